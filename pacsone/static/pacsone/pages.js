// Behaviour shared by every page (loaded by base.html; the Content-Security-Policy allows no
// inline script or on...= handler, so pages declare what they need with data- attributes).
(function () {
  "use strict";

  // <form data-confirm="question">: ask before submitting. window.confirm explicitly: inside a
  // form, a field named "confirm" would shadow a bare confirm() (issue 17).
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // <input type="checkbox" data-select-all="NAME">: checks or clears every box named NAME.
  document.addEventListener("click", function (event) {
    const box = event.target;
    if (box instanceof HTMLInputElement && box.dataset.selectAll) {
      for (const other of document.querySelectorAll('input[name="' + box.dataset.selectAll + '"]')) {
        other.checked = box.checked;
      }
    }
  });

  // <img data-fallback="text">: an image that cannot be loaded becomes a box with the text.
  function fallBack(img) {
    const box = document.createElement("div");
    box.className = "nothumb";
    box.textContent = img.dataset.fallback;
    img.replaceWith(box);
  }
  document.addEventListener("error", function (event) {
    if (event.target instanceof HTMLImageElement && event.target.dataset.fallback) fallBack(event.target);
  }, true);
  function failedAlready() {
    for (const img of document.querySelectorAll("img[data-fallback]")) {
      if (img.complete && img.naturalWidth === 0) fallBack(img);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", failedAlready);
  else failedAlready();
})();
