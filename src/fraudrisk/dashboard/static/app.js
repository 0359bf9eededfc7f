// The dashboard's behaviour, as a static file (the Content-Security-Policy allows no inline
// script): the CSRF header htmx sends, the theme toggle, the charts and the SLA countdowns.
(function () {
  "use strict";

  var THEME_KEY = "fraudrisk-theme";
  var loadedAt = Date.now();

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function currentTheme() {
    return document.documentElement.getAttribute("data-theme") === "dark" ? "dark" : "light";
  }

  function showThemeButton() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    var dark = currentTheme() === "dark";
    button.setAttribute("aria-pressed", dark ? "true" : "false");
    button.textContent = "Dark theme";
  }

  function toggleTheme() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (e) {
      // private mode: the choice lasts for this page only
    }
    showThemeButton();
    drawCharts();
  }

  function drawCharts() {
    if (typeof window.echarts === "undefined") return;
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var existing = window.echarts.getInstanceByDom(element);
      if (existing) existing.dispose();
      var chart = window.echarts.init(element, currentTheme() === "dark" ? "dark" : null, {
        renderer: "canvas",
      });
      var option = JSON.parse(element.getAttribute("data-chart"));
      option.backgroundColor = "transparent";
      chart.setOption(option);
    });
  }

  function tickCountdowns() {
    var elapsed = Math.floor((Date.now() - loadedAt) / 1000);
    document.querySelectorAll("[data-remaining]").forEach(function (element) {
      var left = parseInt(element.getAttribute("data-remaining"), 10) - elapsed;
      element.textContent = slaText(left);
      element.classList.toggle("breached", left < 0);
    });
  }

  function slaText(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor(minutes / 60) % 24;
    var mins = minutes % 60;
    var span;
    if (days) span = days + " d " + hours + " h";
    else if (hours) span = hours + " h " + (mins < 10 ? "0" : "") + mins + " m";
    else span = mins + " m";
    return seconds >= 0 ? "due in " + span : "overdue by " + span;
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form && form.hasAttribute("data-reset-on-success")) {
      form.reset();
    }
  });

  document.addEventListener("htmx:afterSwap", function () {
    loadedAt = Date.now();
    tickCountdowns();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (button) button.addEventListener("click", toggleTheme);
    showThemeButton();
    drawCharts();
    window.setInterval(tickCountdowns, 30000);
    window.addEventListener("resize", function () {
      document.querySelectorAll("[data-chart]").forEach(function (element) {
        var chart = window.echarts && window.echarts.getInstanceByDom(element);
        if (chart) chart.resize();
      });
    });
  });
})();
