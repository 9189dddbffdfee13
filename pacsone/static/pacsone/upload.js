// The upload page: files, folders or ZIPs chosen or dropped (folders walked in the browser),
// sent in one request with a progress bar; then the job is followed and each file's result is
// listed under the name the user knows it by, with a link to the study it went into.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const limitMb = Number(form.dataset.limitMb);
  const limit = limitMb * 1024 * 1024;
  let chosen = [];  // [{file, path}]

  function show() {
    let size = 0;
    for (const item of chosen) size += item.file.size;
    $("chosen").textContent = chosen.length
      ? chosen.length + (chosen.length === 1 ? " file" : " files") + " chosen, " + (size / 1048576).toFixed(1) + " MB"
        + (chosen.length <= 5 ? ": " + chosen.map((item) => item.path).join(", ") : "")
      : "";
    $("send").disabled = chosen.length === 0;
    $("clear").hidden = chosen.length === 0;
  }

  function add(files) {
    for (const file of files) chosen.push({file: file, path: file.webkitRelativePath || file.name});
    show();
  }

  // A dropped folder: its entries read recursively (readEntries answers in batches).
  function walk(entry, prefix) {
    return new Promise(function (resolve) {
      if (entry.isFile) {
        entry.file(function (file) { chosen.push({file: file, path: prefix + file.name}); resolve(); }, function () { resolve(); });
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const all = [];
        const next = function () {
          reader.readEntries(function (batch) {
            if (!batch.length) {
              Promise.all(all.map((child) => walk(child, prefix + entry.name + "/"))).then(resolve);
              return;
            }
            all.push(...batch);
            next();
          }, function () { resolve(); });
        };
        next();
      } else {
        resolve();
      }
    });
  }

  $("files").addEventListener("change", function () { add(this.files); this.value = ""; });
  $("folder").addEventListener("change", function () { add(this.files); this.value = ""; });
  // Files chosen before this script ran (a quick user, or the browser restoring the form).
  for (const input of [$("files"), $("folder")]) {
    if (input.files.length) { add(input.files); input.value = ""; }
  }
  $("clear").addEventListener("click", function () { chosen = []; show(); });
  const zone = $("dropzone");
  zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    const items = event.dataTransfer.items;
    const entries = [];
    if (items && items.length && items[0].webkitGetAsEntry) {
      for (const item of items) {
        const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
        if (entry) entries.push(entry);
      }
    }
    if (entries.length) Promise.all(entries.map((entry) => walk(entry, ""))).then(show);
    else add(event.dataTransfer.files);
  });

  function fail(text) {
    $("upload-error").textContent = text;
    $("upload-error").hidden = false;
    $("send").disabled = false;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function showResults(status) {
    $("results-box").hidden = false;
    $("job-link").href = status.job_url;
    const body = $("results");
    body.textContent = "";
    let stored = 0;
    for (const result of status.results) {
      const row = document.createElement("tr");
      cell(row, result.name, "name");
      if (result.accepted) stored += 1;
      const words = result.accepted
        ? (result.outcome === "ignored" ? "already in the archive" : result.outcome)
        : result.outcome + (result.reason ? ": " + result.reason : "");
      cell(row, words, result.accepted ? "ok" : "error");
      const where = cell(row, "");
      if (result.study_url) {
        const link = document.createElement("a");
        link.href = result.study_url;
        link.textContent = result.study;
        where.appendChild(link);
      } else if (result.accepted) {
        where.textContent = "stored (not visible to you)";
        where.className = "muted";
      }
      body.appendChild(row);
    }
    const total = status.results.length;
    $("results-title").textContent = stored === total ? "All " + total + " files stored" : stored + " of " + total + " files stored";
    $("results-summary").textContent = status.state === "failed" ? status.message : "";
  }

  function follow(url) {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"}).then(function (response) {
      if (!response.ok) throw new Error("The server answered " + response.status + ".");
      return response.json();
    }).then(function (status) {
      const percent = status.total ? Math.round(100 * status.done / status.total) : 0;
      $("progress").value = 100;
      if (status.state === "done" || status.state === "failed") {
        $("progress-text").textContent = "Done.";
        $("send").disabled = false;
        if (status.state === "failed" && !status.results.length) fail(status.message);
        else showResults(status);
        return;
      }
      $("progress-text").textContent = "Storing: " + status.done + " of " + (status.total || "?") + " files checked (" + percent + "%)";
      setTimeout(function () { follow(url); }, 700);
    }).catch(function (error) { fail(error.message); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    $("upload-error").hidden = true;
    let size = 0;
    for (const item of chosen) size += item.file.size;
    if (!chosen.length) return;
    if (size > limit) { fail("These files are larger than " + limitMb + " MB together."); return; }
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    for (const item of chosen) {
      data.append("files", item.file, item.file.name);
      data.append("paths", item.path);
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-CSRFToken", data.get("csrfmiddlewaretoken"));
    $("progress-box").hidden = false;
    $("results-box").hidden = true;
    $("send").disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const percent = Math.round(100 * e.loaded / e.total);
      $("progress").value = percent;
      $("progress-text").textContent = percent + "% of " + (e.total / 1048576).toFixed(1) + " MB sent";
    });
    xhr.addEventListener("load", function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: "The server answered " + xhr.status + "."}; }
      if (xhr.status === 202 && body.status) {
        chosen = [];
        show();
        $("progress-text").textContent = "Sent; storing…";
        follow(body.status);
        return;
      }
      fail(body.error || ("The server answered " + xhr.status + "."));
    });
    xhr.addEventListener("error", function () { fail("The upload was interrupted; nothing of it was stored. Try again."); });
    xhr.send(data);
  });
})();
