// The job page: follows the job's progress until it is finished (data-status-url on #job).
(function () {
  "use strict";
  const url = document.getElementById("job").dataset.statusUrl;
  function render(job) {
    document.getElementById("bar").value = job.percent;
    const state = document.getElementById("state");
    state.textContent = job.state; state.className = job.state === "failed" ? "badge off error" : "badge";
    document.getElementById("counts").textContent = job.done + " of " + job.total + " done" + (job.failed ? ", " + job.failed + " failed" : "");
    document.getElementById("message").textContent = job.message;
    document.getElementById("result").hidden = !job.has_result;
    return job.finished;
  }
  if (render(JSON.parse(document.getElementById("job-initial").textContent))) return;
  const timer = setInterval(function () {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (job) { if (render(job)) clearInterval(timer); })
      .catch(function () { document.getElementById("message").textContent = "cannot reach the server; retrying"; });
  }, 1000);
})();
