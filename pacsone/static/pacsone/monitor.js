// The live monitor: redraws its tables and chart every 3 s from the data URL on #updated.
(function () {
  "use strict";
  const LIMIT = 12;
  function cell(text) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); return td; }
  function fill(id, rows, columns, empty) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement("tr"); const td = cell(empty); td.className = "empty";
      td.colSpan = columns.length; tr.appendChild(td); body.appendChild(tr); return;
    }
    rows.slice(0, LIMIT).forEach(function (row) {
      const tr = document.createElement("tr");
      columns.forEach(function (column) { tr.appendChild(typeof column === "function" ? column(row) : cell(row[column])); });
      body.appendChild(tr);
    });
  }
  function clock(row) { const td = cell((row.when || "").slice(11)); td.title = row.when; td.style.whiteSpace = "nowrap"; return td; }
  // One format on every page: 2026-11-30 08:15 (24-hour).
  function two(n) { return String(n).padStart(2, "0"); }
  function hhmm(date) { return two(date.getHours()) + ":" + two(date.getMinutes()); }
  function hhmmss(date) { return hhmm(date) + ":" + two(date.getSeconds()); }
  function day(date) { return date.getFullYear() + "-" + two(date.getMonth() + 1) + "-" + two(date.getDate()); }
  function since(seconds) { return seconds ? day(new Date(seconds * 1000)) + " " + hhmm(new Date(seconds * 1000)) : ""; }
  function render(data) {
    document.getElementById("no-supervisor").hidden = data.processes.supervisor;
    fill("processes", data.processes.children, ["name", "pid", function (row) {
      const td = cell(row.running ? "running" : "stopped"); td.className = row.running ? "state-up" : "state-down"; return td;
    }, function (row) { return cell(since(row.started)); }, "restarts", "last_exit"], "No process state published yet.");
    fill("nodes", data.nodes, [function (row) { return cell(row.name + (row.this ? " (this node)" : "")); }, "host",
      function (row) { const td = cell(row.state); td.className = row.state === "up" ? "state-up" : "state-down"; return td; },
      function (row) { const td = cell(day(new Date(row.last_seen)) + " " + hhmmss(new Date(row.last_seen))); td.style.whiteSpace = "nowrap"; return td; },
      function (row) {
        const td = document.createElement("td"); const list = document.createElement("div"); list.className = "node-procs";
        row.processes.forEach(function (p) {
          const item = document.createElement("span"); item.textContent = p.name + " pid " + p.pid + (p.running ? "" : " (stopped)");
          item.className = p.running ? "" : "state-down"; list.appendChild(item);
        });
        td.appendChild(list); return td;
      }], "No node has reported yet: start the server with manage.py runpacs.");
    const peak = Math.max(1, ...data.throughput.map(function (m) { return m.count; }));
    const chart = document.getElementById("throughput");
    chart.replaceChildren();
    data.throughput.forEach(function (m, i) {
      const bar = document.createElement("div"); bar.className = "bar";
      bar.title = hhmm(new Date(m.minute)) + ": " + m.count + (m.count === 1 ? " instance" : " instances");
      const f = document.createElement("div"); f.className = "fill"; f.style.height = (100 * m.count / peak) + "%";
      bar.appendChild(f);
      if (i % 15 === 0 || i === data.throughput.length - 1) {
        const label = document.createElement("span"); label.textContent = hhmm(new Date(m.minute)); bar.appendChild(label);
      }
      chart.appendChild(bar);
    });
    fill("associations", data.associations, [clock, "event", "calling_ae", "address"], "No association in the recent log.");
    fill("stored", data.stored, [clock, "outcome", "ae", "channel", "bytes"], "Nothing stored recently.");
    fill("rejected", data.rejected, [clock, "outcome", "ae", "reason"], "No rejection recently.");
    fill("problems", data.problems, [clock, "level", "message"], "No warnings or errors recently.");
    document.getElementById("updated").textContent = "updated " + hhmmss(new Date(data.time));
  }
  render(JSON.parse(document.getElementById("monitor-initial").textContent));
  setInterval(function () {
    fetch(document.getElementById("updated").dataset.url, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(render)
      .catch(function () { document.getElementById("updated").textContent = "cannot reach the server; retrying"; });
  }, 3000);
})();
