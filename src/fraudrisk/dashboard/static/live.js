// The live monitor's updates, as a static file (the Content-Security-Policy allows no inline
// script): an EventSource on /live/events; each snapshot redraws the charts in place and
// rewrites the headline figures and the table. EventSource reconnects when a stream ends.
(function () {
  "use strict";

  function drawChart(element, option) {
    element.setAttribute("data-chart", JSON.stringify(option));
    var chart = window.echarts && window.echarts.getInstanceByDom(element);
    if (!chart) return;
    option.backgroundColor = "transparent";
    chart.setOption(option, { notMerge: true });
  }

  function cell(text, numeric) {
    var td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    return td;
  }

  function fillGroups(groups) {
    var body = document.getElementById("live-groups");
    if (!body) return;
    body.textContent = "";
    if (!groups.length) {
      var empty = cell("No scored transaction in the window.", false);
      empty.setAttribute("colspan", "5");
      body.appendChild(document.createElement("tr")).appendChild(empty);
      return;
    }
    groups.forEach(function (group) {
      var row = document.createElement("tr");
      row.appendChild(cell(group.value, false));
      ["transactions", "tps", "dpm", "alert_rate"].forEach(function (key) {
        row.appendChild(cell(group[key], true));
      });
      body.appendChild(row);
    });
  }

  function show(data) {
    document.querySelectorAll("[data-headline]").forEach(function (element) {
      var value = data.headline[element.getAttribute("data-headline")];
      if (value !== undefined) element.textContent = value;
    });
    document.querySelectorAll("[data-live-chart]").forEach(function (element) {
      var option = data.charts[element.getAttribute("data-live-chart")];
      if (option) drawChart(element, option);
    });
    fillGroups(data.groups);
    setStatus("Updated " + data.updated);
  }

  function setStatus(text) {
    var status = document.getElementById("live-status");
    if (status) status.textContent = text;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (!live || typeof window.EventSource === "undefined") return;
    var source = new window.EventSource(live.getAttribute("data-events"));
    source.onmessage = function (event) {
      show(JSON.parse(event.data));
    };
    source.onerror = function () {
      if (source.readyState === window.EventSource.CLOSED) setStatus("Not updating: reload the page");
      else setStatus("Reconnecting…");
    };
    window.addEventListener("pagehide", function () {
      source.close();
    });
  });
})();
