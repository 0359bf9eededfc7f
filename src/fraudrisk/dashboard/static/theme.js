// The theme before the first paint (loaded in <head>, no inline script): the person's choice
// kept in this browser, else the system's preference.
(function () {
  "use strict";
  var stored = null;
  try {
    stored = window.localStorage.getItem("fraudrisk-theme");
  } catch (e) {
    stored = null;
  }
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.setAttribute("data-theme", stored || (dark ? "dark" : "light"));
})();
