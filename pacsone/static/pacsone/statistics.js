// The statistics page's charts, drawn with the vendored Chart.js from the figures the page
// embeds (json_script "statistics-data"); the tables below them carry the same figures.
(function () {
  "use strict";
  var source = document.getElementById("statistics-data");
  if (!source || !window.Chart) { return; }
  var data = JSON.parse(source.textContent);
  var blue = "#1565c0", light = "#90b4e0", grey = "#cfd8dc";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function sizeText(bytes) {
    var units = ["bytes", "kB", "MB", "GB", "TB", "PB"], i = 0;
    while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  function bars(id, labels, datasets, options) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    new Chart(canvas, {type: "bar", data: {labels: labels, datasets: datasets}, options: options || {
      plugins: {legend: {display: datasets.length > 1}},
      scales: {y: {beginAtZero: true, ticks: {precision: 0}}}
    }});
  }

  bars("chart-timeline", data.timeline.labels, [
    {label: "Instances", data: data.timeline.instances, backgroundColor: light, yAxisID: "y"},
    {label: "Studies", data: data.timeline.studies, type: "line", borderColor: blue, backgroundColor: blue, yAxisID: "y1", pointRadius: 2}
  ], {
    plugins: {legend: {display: true}},
    scales: {
      y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "instances"}},
      y1: {beginAtZero: true, position: "right", ticks: {precision: 0}, grid: {drawOnChartArea: false}, title: {display: true, text: "studies"}}
    }
  });
  bars("chart-modality", data.modality.labels, [{label: "Instances", data: data.modality.instances, backgroundColor: blue}]);
  bars("chart-hours", data.hours.labels, [{label: "Instances", data: data.hours.instances, backgroundColor: blue}]);
  bars("chart-source-ae", data.source_ae.labels, [{label: "Instances", data: data.source_ae.instances, backgroundColor: blue}]);
  bars("chart-storage", data.storage.labels, [
    {label: "Used", data: data.storage.used, backgroundColor: blue},
    {label: "Free", data: data.storage.free, backgroundColor: grey}
  ], {
    indexAxis: "y",
    plugins: {legend: {display: true}, tooltip: {callbacks: {label: function (c) { return c.dataset.label + ": " + sizeText(c.raw); }}}},
    scales: {x: {stacked: true, ticks: {callback: function (v) { return sizeText(v); }}}, y: {stacked: true}}
  });
})();
