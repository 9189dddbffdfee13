// The series viewer: frames are rendered by the server (PNG with the chosen window); this script
// scrolls the stack, windows, zooms, pans, plays cine and draws the overlay. No dependencies.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("viewer-data").textContent);
  const $ = (id) => document.getElementById(id);
  const viewport = $("viewport"), image = $("image"), message = $("message");
  const slider = $("slider"), presetChoice = $("preset"), playButton = $("play");

  // One slice per frame of every image, so multi-frame images and stacks scroll alike.
  const slices = [];
  data.stack.forEach((item) => {
    for (let frame = 0; frame < item.frames; frame++) slices.push({ item, frame });
  });
  const state = { index: 0, window: null, zoom: 1, panX: 0, panY: 0, tool: "window", playing: null };
  const cache = new Map(); // url -> object URL of a fetched image (small LRU)
  const CACHE_SIZE = 80;
  let shownUrl = "", latestRequest = 0, windowBase = data.default_window || null;

  function frameUrl(slice) {
    let url = `${slice.item.url}?frame=${slice.frame}`;
    if (state.window) url += `&wc=${state.window.wc.toFixed(1)}&ww=${state.window.ww.toFixed(1)}`;
    return url;
  }

  const pending = new Map(); // url -> promise of a fetch under way (preload and show share it)

  function fetchImage(url) {
    if (cache.has(url)) {
      const hit = cache.get(url);
      cache.delete(url);
      cache.set(url, hit); // most recently used last
      return Promise.resolve(hit);
    }
    if (!pending.has(url)) {
      pending.set(url, download(url).finally(() => pending.delete(url)));
    }
    return pending.get(url);
  }

  async function download(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300);
      throw new Error(text || `The server answered ${response.status}.`);
    }
    if (!(response.headers.get("Content-Type") || "").startsWith("image/")) {
      // An idle session ends: the server answered with the login page instead.
      throw new Error("Your session has ended. Reload the page to log in again.");
    }
    const objectUrl = URL.createObjectURL(await response.blob());
    cache.set(url, objectUrl);
    if (cache.size > CACHE_SIZE) {
      const [oldUrl, oldObject] = cache.entries().next().value;
      cache.delete(oldUrl);
      URL.revokeObjectURL(oldObject);
    }
    return objectUrl;
  }

  async function show() {
    if (!slices.length) return showMessage("This series has no images.");
    const slice = slices[state.index];
    const url = frameUrl(slice);
    const request = ++latestRequest;
    drawOverlay();
    if (url === shownUrl) return;
    try {
      const objectUrl = await fetchImage(url);
      if (request !== latestRequest) return; // the user has moved on
      image.src = objectUrl;
      shownUrl = url;
      message.hidden = true;
      image.hidden = false;
    } catch (error) {
      if (request !== latestRequest) return;
      shownUrl = "";
      image.hidden = true;
      showMessage(error.message);
    }
    preload();
  }

  function preload() {
    // The next few slices in the scrolling direction, so that scrolling and cine stay smooth.
    for (let step = 1; step <= 3; step++) {
      const next = slices[state.index + step];
      if (next) fetchImage(frameUrl(next)).catch(() => {});
    }
  }

  function showMessage(text) {
    message.textContent = text;
    message.hidden = false;
  }

  function fit() {
    if (!image.naturalWidth) return;
    const scale = Math.min(viewport.clientWidth / image.naturalWidth, viewport.clientHeight / image.naturalHeight);
    image.style.width = `${image.naturalWidth * scale}px`;
    image.style.height = `${image.naturalHeight * scale}px`;
    place();
  }

  function place() {
    image.style.transform = `translate(-50%, -50%) translate(${state.panX}px, ${state.panY}px) scale(${state.zoom})`;
    drawOverlay();
  }

  function drawOverlay() {
    const o = data.overlay;
    const line = (...parts) => parts.filter(Boolean).join("  ");
    $("ov-tl").textContent = [o.PatientName, line(o.PatientID, o.PatientSex), o.PatientBirthDate].filter(Boolean).join("\n");
    $("ov-tr").textContent = [o.InstitutionName, line(o.StudyDate), o.StudyDescription, line(o.Modality, o.SeriesDescription)].filter(Boolean).join("\n");
    if (!slices.length) return;
    const slice = slices[state.index];
    const frames = slice.item.frames > 1 ? `  frame ${slice.frame + 1}/${slice.item.frames}` : "";
    const location = slice.item.location !== "" ? `\nLoc ${slice.item.location}` : "";
    $("ov-bl").textContent = `Im ${slice.item.number ?? "?"}  (${state.index + 1}/${slices.length})${frames}${location}`;
    const w = state.window || windowBase;
    $("ov-br").textContent = (w ? `WL ${Math.round(w.wc)}  WW ${Math.round(w.ww)}\n` : "WL default\n") + `Zoom ${Math.round(state.zoom * 100)}%`;
    $("position").textContent = `${state.index + 1} / ${slices.length}`;
    slider.value = state.index;
    $("header-link").href = slice.item.header;
    $("notes-link").href = $("notes-link").href.split("?")[0] + `?instance=${encodeURIComponent(slice.item.sop)}`;
  }

  function go(index) {
    const clamped = Math.max(0, Math.min(slices.length - 1, index));
    if (clamped === state.index && shownUrl) return;
    state.index = clamped;
    show();
  }

  function setWindow(win) {
    windowWanted = null; // a preset or reset wins over a drag still being rendered
    state.window = win;
    if (win) windowBase = win;
    show();
  }

  // Window/level dragging asks the server for one frame at a time, never a queue of them.
  let windowPending = false, windowWanted = null;
  async function dragWindow(win) {
    windowWanted = win;
    if (windowPending) return;
    windowPending = true;
    while (windowWanted) {
      const next = windowWanted;
      windowWanted = null;
      state.window = next;
      windowBase = next;
      await show();
    }
    windowPending = false;
  }

  function togglePlay() {
    if (state.playing) {
      clearInterval(state.playing);
      state.playing = null;
      playButton.textContent = "▶ Cine";
      return;
    }
    const fps = Math.max(1, Math.min(60, Number($("fps").value) || 10));
    state.playing = setInterval(() => go(state.index + 1 < slices.length ? state.index + 1 : 0), 1000 / fps);
    playButton.textContent = "❚❚ Stop";
  }

  function reset() {
    state.zoom = 1;
    state.panX = state.panY = 0;
    presetChoice.value = "";
    windowBase = data.default_window || null;
    setWindow(null);
    fit();
  }

  // Wiring
  data.presets.forEach((preset, number) => {
    const option = document.createElement("option");
    option.value = String(number);
    option.textContent = `${number < 9 ? number + 1 + ": " : ""}${preset.label} (${preset.wc}/${preset.ww})`;
    presetChoice.appendChild(option);
  });
  if (!windowBase && data.presets.length) windowBase = { wc: data.presets[0].wc, ww: data.presets[0].ww };
  presetChoice.addEventListener("change", () => {
    const preset = data.presets[Number(presetChoice.value)];
    setWindow(presetChoice.value === "" ? null : { wc: preset.wc, ww: preset.ww });
    viewport.focus();
  });
  if (data.fps) $("fps").value = data.fps; // as recorded by the modality
  slider.max = Math.max(slices.length - 1, 0);
  slider.addEventListener("input", () => go(Number(slider.value)));
  playButton.addEventListener("click", togglePlay);
  $("reset").addEventListener("click", reset);
  $("series-choice").addEventListener("change", (event) => { window.location = event.target.value; });
  document.querySelectorAll("[data-tool]").forEach((button) => button.addEventListener("click", () => {
    state.tool = button.dataset.tool;
    document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("on", b === button));
    viewport.focus();
  }));
  image.addEventListener("load", () => { if (!image.style.width || image.dataset.size !== `${image.naturalWidth}x${image.naturalHeight}`) { image.dataset.size = `${image.naturalWidth}x${image.naturalHeight}`; fit(); } });
  window.addEventListener("resize", fit);

  viewport.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey) {
      state.zoom = Math.max(0.1, Math.min(20, state.zoom * (event.deltaY < 0 ? 1.1 : 1 / 1.1)));
      place();
    } else {
      go(state.index + (event.deltaY > 0 ? 1 : -1));
    }
  }, { passive: false });

  let drag = null;
  viewport.addEventListener("pointerdown", (event) => {
    viewport.focus();
    const tool = event.shiftKey || event.button === 1 ? "pan" : state.tool;
    const start = state.window || windowBase || { wc: 128, ww: 256 };
    drag = { x: event.clientX, y: event.clientY, tool, window: { ...start }, zoom: state.zoom, panX: state.panX, panY: state.panY };
    viewport.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  viewport.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (drag.tool === "pan") {
      state.panX = drag.panX + dx;
      state.panY = drag.panY + dy;
      place();
    } else if (drag.tool === "zoom") {
      state.zoom = Math.max(0.1, Math.min(20, drag.zoom * Math.exp(-dy / 200)));
      place();
    } else {
      const step = Math.max(drag.window.ww, 10) / 250; // proportional: fine for narrow windows too
      presetChoice.value = "";
      dragWindow({ wc: drag.window.wc + dy * step, ww: Math.max(1, drag.window.ww + dx * step) });
    }
  });
  const endDrag = () => { drag = null; };
  viewport.addEventListener("pointerup", endDrag);
  viewport.addEventListener("pointercancel", endDrag);
  viewport.addEventListener("contextmenu", (event) => event.preventDefault());

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea")) return;
    const keys = {
      ArrowDown: () => go(state.index + 1), ArrowRight: () => go(state.index + 1), PageDown: () => go(state.index + 10),
      ArrowUp: () => go(state.index - 1), ArrowLeft: () => go(state.index - 1), PageUp: () => go(state.index - 10),
      Home: () => go(0), End: () => go(slices.length - 1), " ": togglePlay, r: reset, R: reset,
      "+": () => { state.zoom = Math.min(20, state.zoom * 1.25); place(); },
      "-": () => { state.zoom = Math.max(0.1, state.zoom / 1.25); place(); },
    };
    let action = keys[event.key];
    const number = Number(event.key);
    if (!action && number >= 1 && number <= 9 && data.presets[number - 1]) {
      action = () => { presetChoice.value = String(number - 1); presetChoice.dispatchEvent(new Event("change")); };
    }
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // Start at the image named in the address (#SOPInstanceUID), e.g. from the series page.
  const wanted = decodeURIComponent(window.location.hash.slice(1));
  const start = wanted ? slices.findIndex((slice) => slice.item.sop === wanted) : -1;
  state.index = Math.max(start, 0);
  viewport.focus();
  show();
})();
