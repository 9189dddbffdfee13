// The upload page: sends the chosen files with a progress bar, then opens the import job.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  const limitMb = Number(form.dataset.limitMb);
  const limit = limitMb * 1024 * 1024;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const files = document.getElementById("files").files;
    const error = document.getElementById("upload-error");
    error.hidden = true;
    let size = 0;
    for (const f of files) size += f.size;
    if (!files.length) return;
    if (size > limit) { error.textContent = "These files are larger than " + limitMb + " MB together."; error.hidden = false; return; }
    const data = new FormData(form);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-CSRFToken", data.get("csrfmiddlewaretoken"));
    document.getElementById("progress-box").hidden = false;
    document.getElementById("send").disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const percent = Math.round(100 * e.loaded / e.total);
      document.getElementById("progress").value = percent;
      document.getElementById("progress-text").textContent = percent + "% of " + (e.total / 1048576).toFixed(1) + " MB sent";
    });
    xhr.addEventListener("load", function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: "The server answered " + xhr.status + "."}; }
      if (xhr.status === 202 && body.url) { window.location = body.url; return; }
      error.textContent = body.error || ("The server answered " + xhr.status + ".");
      error.hidden = false;
      document.getElementById("send").disabled = false;
    });
    xhr.addEventListener("error", function () {
      error.textContent = "The upload was interrupted; nothing of it was stored. Try again.";
      error.hidden = false;
      document.getElementById("send").disabled = false;
    });
    xhr.send(data);
  });
})();
