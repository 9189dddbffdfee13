// The job page: follows the job's progress until it is finished (data-status-url on #job).
(function () {
  "use strict";
  const url = document.getElementById("job").dataset.statusUrl;
  function render(job) {
    document.getElementById("bar").value = job.percent;
    const state = document.getElementById("state");
    state.textContent = job.state_text; state.className = job.state === "failed" ? "badge off error" : "badge";
    document.getElementById("counts").textContent = job.done + " of " + job.total + " done" + (job.failed ? ", " + job.failed + " failed" : "");
    document.getElementById("attempts").textContent = "attempt " + job.attempts + " of " + job.max_attempts;
    document.getElementById("message").textContent = job.message;
    document.getElementById("error").hidden = !job.last_error;
    document.getElementById("error-text").textContent = job.last_error;
    document.getElementById("result").hidden = !job.has_result;
    document.getElementById("retry").hidden = !(job.state === "failed" || job.state === "cancelled");
    document.getElementById("cancel").hidden = job.finished;
    return job.finished;
  }
  if (render(JSON.parse(document.getElementById("job-initial").textContent))) return;
  const timer = setInterval(function () {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (job) { if (render(job)) clearInterval(timer); })
      .catch(function () { document.getElementById("message").textContent = "cannot reach the server; retrying"; });
  }, 1000);
})();
