// The series viewer. Grayscale frames arrive as their real values (modality units, e.g. HU) and
// are windowed here in a canvas, so window/level follows the mouse at screen rate with no
// request; colour frames and frames the server cannot send that way are server-rendered PNGs.
// Changing series loads the other series' data in place and keeps window, zoom, orientation
// and the relative position. No dependencies.
(function () {
  "use strict";
  let data = JSON.parse(document.getElementById("viewer-data").textContent);
  const $ = (id) => document.getElementById(id);
  const viewport = $("viewport"), image = $("image"), canvas = $("canvas"), message = $("message");
  const slider = $("slider"), presetChoice = $("preset"), playButton = $("play");
  const context = canvas.getContext("2d");

  let slices = [];
  const state = {
    index: 0, window: null, zoom: 1, panX: 0, panY: 0, tool: "window", playing: null,
    invert: false, rotation: 0, flipH: false, flipV: false, cursor: null,
  };
  let windowBase = null;
  let current = null; // what is shown: {kind: "pixels", frame} or {kind: "png"}
  let shownIndex = -1; // the slice `current` belongs to

  // --- Frames: real values (typed arrays) or PNG object URLs, in a small LRU cache ------------
  const CACHE_SIZE = 160;
  const cache = new Map(), pending = new Map();

  function remember(key, value) {
    cache.set(key, value);
    if (cache.size > CACHE_SIZE) {
      const [oldKey, old] = cache.entries().next().value;
      cache.delete(oldKey);
      if (old.objectUrl) URL.revokeObjectURL(old.objectUrl);
    }
    return value;
  }

  function load(key, loader) {
    if (cache.has(key)) {
      const hit = cache.get(key);
      cache.delete(key);
      cache.set(key, hit);
      return Promise.resolve(hit);
    }
    if (!pending.has(key)) pending.set(key, loader().then((value) => remember(key, value)).finally(() => pending.delete(key)));
    return pending.get(key);
  }

  async function answer(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.redirected && response.url.includes("/accounts/login/")) {
      throw new Error("Your session has ended. Reload the page to log in again.");
    }
    return response;
  }

  const pixelKey = (slice) => `${slice.item.pixels}?frame=${slice.frame}`;

  function framePixels(about, buffer) {
    const values = about.type === "int16" ? new Int16Array(buffer) : new Float32Array(buffer);
    return { values, int16: about.type === "int16", monochrome1: Boolean(about.monochrome1), rows: about.rows, columns: about.columns };
  }

  // Frames ahead of the one asked for come in the same request (series pixels endpoint): one
  // request per BATCH images while scrolling, instead of one per image.
  const BATCH = 16;
  function fetchBatch(index) {
    const wanted = [];
    for (let at = index; at < slices.length && wanted.length < BATCH; at++) {
      const key = pixelKey(slices[at]);
      if (!cache.has(key) && !pending.has(key)) wanted.push(slices[at]);
      else if (at > index) break; // the rest is cached or on its way
    }
    if (wanted.length < 2 || !data.pixels_batch) return;
    const query = wanted.map((slice) => `f=${encodeURIComponent(slice.item.sop)}:${slice.frame}`).join("&");
    const arrived = answer(`${data.pixels_batch}?${query}`).then(async (response) => {
      if (!response.ok) throw new Error((await response.text()).slice(0, 300) || `The server answered ${response.status}.`);
      const buffer = await response.arrayBuffer();
      const headLength = new DataView(buffer).getUint32(0, true);
      const entries = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headLength)));
      const start = 4 + headLength;
      return entries.map((about) => about.status ? about : framePixels(about, buffer.slice(start + about.offset, start + about.offset + about.length)));
    });
    wanted.forEach((slice, position) => {
      const key = pixelKey(slice);
      pending.set(key, arrived.then((frames) => {
        const frame = frames[position];
        if (frame.status === 415) return remember(key, { unsupported: true });
        if (frame.status) throw new Error(frame.reason);
        return remember(key, frame);
      }).finally(() => pending.delete(key)));
    });
  }

  function pixelsOf(slice, index) {
    const key = pixelKey(slice);
    if (index !== undefined && !cache.has(key) && !pending.has(key)) fetchBatch(index);
    return load(key, async () => {
      const response = await answer(key);
      if (response.status === 415) return { unsupported: true };
      if (!response.ok) throw new Error((await response.text()).slice(0, 300) || `The server answered ${response.status}.`);
      return framePixels({
        type: response.headers.get("X-Pixel-Type"), monochrome1: response.headers.get("X-Monochrome1") === "1",
        rows: Number(response.headers.get("X-Rows")), columns: Number(response.headers.get("X-Columns")),
      }, await response.arrayBuffer());
    });
  }

  function pngOf(slice) {
    return load(`${slice.item.url}?frame=${slice.frame}`, async () => {
      const response = await answer(`${slice.item.url}?frame=${slice.frame}`);
      if (!response.ok) throw new Error((await response.text()).slice(0, 300) || `The server answered ${response.status}.`);
      if (!(response.headers.get("Content-Type") || "").startsWith("image/")) {
        throw new Error("Your session has ended. Reload the page to log in again.");
      }
      return { objectUrl: URL.createObjectURL(await response.blob()) };
    });
  }

  async function frameOf(slice, index) {
    const frame = await pixelsOf(slice, index);
    if (!frame.unsupported) return { kind: "pixels", frame };
    return { kind: "png", png: await pngOf(slice) };
  }

  // --- Windowing in the browser -----------------------------------------------------------------
  function range(frame) {
    if (frame.range) return frame.range;
    let low = Infinity, high = -Infinity;
    for (const value of frame.values) { if (value < low) low = value; if (value > high) high = value; }
    frame.range = { low, high };
    return frame.range;
  }

  function windowFor(frame) {
    if (state.window) return state.window;
    if (windowBase) return windowBase;
    const { low, high } = range(frame);
    return { wc: (low + high + 1) / 2, ww: Math.max(high - low + 1, 1) };
  }

  let lut = null, lutKey = "";
  function lookup(win, inverted) {
    // int16 values: one 65,536-entry table per window, then one lookup per pixel.
    const key = `${win.wc}/${win.ww}/${inverted}`;
    if (key === lutKey) return lut;
    lut = lut || new Uint8ClampedArray(65536);
    const low = win.wc - 0.5 - (win.ww - 1) / 2, scale = 255 / Math.max(win.ww - 1, 1);
    for (let i = 0; i < 65536; i++) {
      const gray = ((i - 32768) - low) * scale;
      const clamped = gray < 0 ? 0 : gray > 255 ? 255 : gray;
      lut[i] = inverted ? 255 - clamped : clamped;
    }
    lutKey = key;
    return lut;
  }

  let imageData = null;
  function paint(frame) {
    if (canvas.width !== frame.columns || canvas.height !== frame.rows) {
      canvas.width = frame.columns;
      canvas.height = frame.rows;
      imageData = null;
    }
    imageData = imageData || context.createImageData(frame.columns, frame.rows);
    const out = imageData.data, values = frame.values, win = windowFor(frame);
    const inverted = state.invert !== frame.monochrome1;
    if (frame.int16) {
      const table = lookup(win, inverted);
      for (let i = 0, j = 0; i < values.length; i++, j += 4) {
        const gray = table[values[i] + 32768];
        out[j] = out[j + 1] = out[j + 2] = gray;
        out[j + 3] = 255;
      }
    } else {
      const low = win.wc - 0.5 - (win.ww - 1) / 2, scale = 255 / Math.max(win.ww - 1, 1);
      for (let i = 0, j = 0; i < values.length; i++, j += 4) {
        let gray = (values[i] - low) * scale;
        gray = gray < 0 ? 0 : gray > 255 ? 255 : gray;
        if (inverted) gray = 255 - gray;
        out[j] = out[j + 1] = out[j + 2] = gray;
        out[j + 3] = 255;
      }
    }
    context.putImageData(imageData, 0, 0);
  }

  let repaintQueued = false;
  function repaint() {
    // Window drags repaint once per screen refresh, whatever the mouse's event rate.
    if (repaintQueued) return;
    repaintQueued = true;
    requestAnimationFrame(() => {
      repaintQueued = false;
      if (current && current.kind === "pixels") paint(current.frame);
      drawOverlay();
    });
  }

  // --- Showing a slice ------------------------------------------------------------------------------
  let latest = 0;
  async function show() {
    if (!slices.length) { hideAll(); return showMessage("This series has no images."); }
    const request = ++latest;
    drawOverlay();
    try {
      const shown = await frameOf(slices[state.index], state.index);
      if (request !== latest) return; // the user has moved on
      current = shown;
      shownIndex = state.index;
      message.hidden = true;
      if (shown.kind === "pixels") {
        paint(shown.frame);
        image.hidden = true;
        canvas.hidden = false;
        size(shown.frame.columns, shown.frame.rows);
      } else {
        canvas.hidden = true;
        image.src = shown.png.objectUrl;
        image.hidden = false;
      }
      drawOverlay();
      // Tests and `make bench` wait for this (no polling, no frame-rate floor) to time a scroll.
      viewport.dispatchEvent(new CustomEvent("pacs:shown", { detail: shownIndex }));
    } catch (error) {
      if (request !== latest) return;
      current = null;
      hideAll();
      showMessage(error.message);
    }
    preload();
  }

  function hideAll() { image.hidden = true; canvas.hidden = true; }

  // Slices fetched ahead of the one shown (three batches in flight), so that a scroll rarely
  // waits for the server: a 1,000-image stack goes end to end in a few seconds.
  const PRELOAD = 48;
  function preload() {
    for (let step = 1; step <= PRELOAD; step++) {
      const next = slices[state.index + step];
      if (next) frameOf(next, state.index + step).catch(() => {});
    }
  }

  function showMessage(text) {
    message.textContent = text;
    message.hidden = false;
  }

  // --- Geometry: fit, zoom, pan, rotate, flip ---------------------------------------------------
  let natural = { width: 0, height: 0 };
  function size(width, height) {
    if (natural.width === width && natural.height === height) return place();
    natural = { width, height };
    fit();
  }

  function fit() {
    if (!natural.width) return;
    const turned = state.rotation % 180 !== 0;
    const w = turned ? natural.height : natural.width, h = turned ? natural.width : natural.height;
    const scale = Math.min(viewport.clientWidth / w, viewport.clientHeight / h);
    for (const element of [canvas, image]) {
      element.style.width = `${natural.width * scale}px`;
      element.style.height = `${natural.height * scale}px`;
    }
    place();
  }

  function place() {
    const transform = `translate(-50%, -50%) translate(${state.panX}px, ${state.panY}px) scale(${state.zoom}) ` +
      `rotate(${state.rotation}deg) scale(${state.flipH ? -1 : 1}, ${state.flipV ? -1 : 1})`;
    canvas.style.transform = image.style.transform = transform;
    drawOverlay();
  }

  function pixelAt(clientX, clientY) {
    // The frame's pixel under a point of the screen: the element's transform undone.
    if (!current || current.kind !== "pixels") return null;
    const box = viewport.getBoundingClientRect();
    const shownWidth = parseFloat(canvas.style.width), shownHeight = parseFloat(canvas.style.height);
    let x = clientX - box.left - box.width / 2 - state.panX, y = clientY - box.top - box.height / 2 - state.panY;
    x /= state.zoom; y /= state.zoom;
    const angle = -state.rotation * Math.PI / 180;
    [x, y] = [x * Math.cos(angle) - y * Math.sin(angle), x * Math.sin(angle) + y * Math.cos(angle)];
    if (state.flipH) x = -x;
    if (state.flipV) y = -y;
    const column = Math.floor((x + shownWidth / 2) / shownWidth * current.frame.columns);
    const row = Math.floor((y + shownHeight / 2) / shownHeight * current.frame.rows);
    if (column < 0 || row < 0 || column >= current.frame.columns || row >= current.frame.rows) return null;
    return { column, row, value: current.frame.values[row * current.frame.columns + column] };
  }

  // --- Overlay ------------------------------------------------------------------------------------------
  function drawOverlay() {
    const o = data.overlay;
    const line = (...parts) => parts.filter(Boolean).join("  ");
    $("ov-tl").textContent = [o.PatientName, line(o.PatientID, o.PatientSex), o.PatientBirthDate].filter(Boolean).join("\n");
    $("ov-tr").textContent = [o.InstitutionName, line(o.StudyDate), o.StudyDescription, line(o.Modality, o.SeriesDescription)].filter(Boolean).join("\n");
    if (!slices.length) return;
    const slice = slices[state.index];
    const frames = slice.item.frames > 1 ? `  frame ${slice.frame + 1}/${slice.item.frames}` : "";
    const location = slice.item.location !== "" ? `\nLoc ${slice.item.location}` : "";
    let under = "";
    if (state.cursor) {
      const unit = data.modality === "CT" ? " HU" : "";
      const value = Number.isInteger(state.cursor.value) ? state.cursor.value : state.cursor.value.toFixed(2);
      under = `\n(${state.cursor.column}, ${state.cursor.row})  ${value}${unit}`;
    }
    $("ov-bl").textContent = `Im ${slice.item.number ?? "?"}  (${state.index + 1}/${slices.length})${frames}${location}${under}`;
    const w = current && current.kind === "pixels" ? windowFor(current.frame) : state.window || windowBase;
    const orientation = [state.invert ? "inverted" : "", state.rotation ? `${state.rotation}°` : "",
      state.flipH ? "flipped ⇆" : "", state.flipV ? "flipped ⇅" : ""].filter(Boolean).join("  ");
    $("ov-br").textContent = (w ? `WL ${Math.round(w.wc)}  WW ${Math.round(w.ww)}\n` : "WL default\n") +
      `Zoom ${Math.round(state.zoom * 100)}%` + (orientation ? `\n${orientation}` : "");
    $("position").textContent = `${state.index + 1} / ${slices.length}`;
    slider.value = state.index;
    $("header-link").href = slice.item.header;
    $("notes-link").href = $("notes-link").href.split("?")[0] + `?instance=${encodeURIComponent(slice.item.sop)}`;
  }

  // --- Actions --------------------------------------------------------------------------------------------
  function go(index) {
    const clamped = Math.max(0, Math.min(slices.length - 1, index));
    if (clamped === state.index && current) return;
    state.index = clamped;
    show();
  }

  function setWindow(win) {
    state.window = win;
    if (win) windowBase = win;
    if (current && current.kind === "pixels") repaint();
    else show();
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
    Object.assign(state, { zoom: 1, panX: 0, panY: 0, invert: false, rotation: 0, flipH: false, flipV: false });
    presetChoice.value = "";
    windowBase = data.default_window || null;
    setWindow(null);
    fit();
  }

  function turn(change) {
    change();
    fit();
    repaint();
  }

  function toggleHelp(open) {
    $("help").hidden = open === undefined ? !$("help").hidden : !open;
  }

  // --- A series: its stack and presets (on load, and when another series is chosen) -------------
  function useSeries(next, keepPlace) {
    const fraction = slices.length > 1 ? state.index / (slices.length - 1) : 0;
    data = next;
    slices = [];
    data.stack.forEach((item) => {
      for (let frame = 0; frame < item.frames; frame++) slices.push({ item, frame });
    });
    presetChoice.length = 1;
    data.presets.forEach((preset, number) => {
      const option = document.createElement("option");
      option.value = String(number);
      option.textContent = `${number < 9 ? number + 1 + ": " : ""}${preset.label} (${preset.wc}/${preset.ww})`;
      presetChoice.appendChild(option);
    });
    if (!keepPlace) {
      windowBase = data.default_window || (data.presets.length ? { wc: data.presets[0].wc, ww: data.presets[0].ww } : null);
    }
    if (data.fps) $("fps").value = data.fps;
    slider.max = Math.max(slices.length - 1, 0);
    state.index = keepPlace ? Math.round(fraction * Math.max(slices.length - 1, 0)) : 0;
    current = null;
    state.cursor = null;
  }

  async function openSeries(url) {
    try {
      const response = await answer(url);
      if (!response.ok || !(response.headers.get("Content-Type") || "").includes("json")) {
        throw new Error(response.ok ? "Your session has ended. Reload the page to log in again." : `The server answered ${response.status}.`);
      }
      const next = await response.json();
      useSeries(next, true);
      history.replaceState(null, "", next.url);
      show();
    } catch (error) {
      showMessage(error.message);
    }
    viewport.focus();
  }

  // --- Wiring ---------------------------------------------------------------------------------------------
  presetChoice.addEventListener("change", () => {
    const preset = data.presets[Number(presetChoice.value)];
    setWindow(presetChoice.value === "" ? null : { wc: preset.wc, ww: preset.ww });
    viewport.focus();
  });
  slider.addEventListener("input", () => go(Number(slider.value)));
  playButton.addEventListener("click", togglePlay);
  $("reset").addEventListener("click", reset);
  $("invert").addEventListener("click", () => turn(() => { state.invert = !state.invert; }));
  $("rotate").addEventListener("click", () => turn(() => { state.rotation = (state.rotation + 90) % 360; }));
  $("flip-h").addEventListener("click", () => turn(() => { state.flipH = !state.flipH; }));
  $("flip-v").addEventListener("click", () => turn(() => { state.flipV = !state.flipV; }));
  $("help-button").addEventListener("click", () => toggleHelp());
  $("series-choice").addEventListener("change", (event) => openSeries(event.target.value));
  document.querySelectorAll("[data-tool]").forEach((button) => button.addEventListener("click", () => {
    state.tool = button.dataset.tool;
    document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("on", b === button));
    viewport.focus();
  }));
  image.addEventListener("load", () => size(image.naturalWidth, image.naturalHeight));
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

  // Mouse: the tool (window, pan, zoom). Touch: one finger swipes through the images, two pinch.
  let drag = null;
  const touches = new Map();
  viewport.addEventListener("pointerdown", (event) => {
    viewport.focus();
    if (event.pointerType === "touch") {
      touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
      drag = touches.size === 1
        ? { tool: "swipe", y: event.clientY, index: state.index }
        : { tool: "pinch", distance: spread(), zoom: state.zoom };
      viewport.setPointerCapture(event.pointerId);
      return;
    }
    const tool = event.shiftKey || event.button === 1 ? "pan" : state.tool;
    const start = current && current.kind === "pixels" ? windowFor(current.frame) : state.window || windowBase || { wc: 128, ww: 256 };
    drag = { x: event.clientX, y: event.clientY, tool, window: { ...start }, zoom: state.zoom, panX: state.panX, panY: state.panY };
    viewport.setPointerCapture(event.pointerId);
    event.preventDefault();
  });

  function spread() {
    const [a, b] = [...touches.values()];
    return a && b ? Math.hypot(a.x - b.x, a.y - b.y) : 1;
  }

  viewport.addEventListener("pointermove", (event) => {
    if (event.pointerType !== "touch") {
      state.cursor = pixelAt(event.clientX, event.clientY);
      if (!drag) { repaintOverlayOnly(); return; }
    } else if (touches.has(event.pointerId)) {
      touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    }
    if (!drag) return;
    if (drag.tool === "swipe") {
      const step = Math.max(8, viewport.clientHeight / Math.max(slices.length, 1) / 2);
      go(drag.index + Math.round((drag.y - event.clientY) / step));
      return;
    }
    if (drag.tool === "pinch") {
      state.zoom = Math.max(0.1, Math.min(20, drag.zoom * spread() / Math.max(drag.distance, 1)));
      place();
      return;
    }
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
      state.window = { wc: drag.window.wc + dy * step, ww: Math.max(1, drag.window.ww + dx * step) };
      windowBase = state.window;
      if (current && current.kind === "pixels") repaint();
    }
  });

  let overlayQueued = false;
  function repaintOverlayOnly() {
    if (overlayQueued) return;
    overlayQueued = true;
    requestAnimationFrame(() => { overlayQueued = false; drawOverlay(); });
  }

  const endDrag = (event) => {
    touches.delete(event.pointerId);
    if (drag && drag.tool === "window" && (!current || current.kind !== "pixels")) show();
    drag = touches.size === 1 ? { tool: "swipe", y: [...touches.values()][0].y, index: state.index } : null;
  };
  viewport.addEventListener("pointerup", endDrag);
  viewport.addEventListener("pointercancel", endDrag);
  viewport.addEventListener("pointerleave", () => { state.cursor = null; repaintOverlayOnly(); });
  viewport.addEventListener("contextmenu", (event) => event.preventDefault());

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea")) return;
    const keys = {
      ArrowDown: () => go(state.index + 1), ArrowRight: () => go(state.index + 1), PageDown: () => go(state.index + 10),
      ArrowUp: () => go(state.index - 1), ArrowLeft: () => go(state.index - 1), PageUp: () => go(state.index - 10),
      Home: () => go(0), End: () => go(slices.length - 1), " ": togglePlay, r: reset, R: reset,
      "+": () => { state.zoom = Math.min(20, state.zoom * 1.25); place(); },
      "-": () => { state.zoom = Math.max(0.1, state.zoom / 1.25); place(); },
      i: () => $("invert").click(), I: () => $("invert").click(), o: () => $("rotate").click(), O: () => $("rotate").click(),
      h: () => $("flip-h").click(), H: () => $("flip-h").click(), v: () => $("flip-v").click(), V: () => $("flip-v").click(),
      "?": () => toggleHelp(), Escape: () => toggleHelp(false),
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
  useSeries(data, false);
  const wanted = decodeURIComponent(window.location.hash.slice(1));
  const start = wanted ? slices.findIndex((slice) => slice.item.sop === wanted) : -1;
  state.index = Math.max(start, 0);
  viewport.focus();
  show();
  // For tests and the benchmark: how many frames have been painted, and what is shown.
  window.pacsViewer = {
    state: state, slices: () => slices.length, shown: () => current && current.kind, shownIndex: () => shownIndex,
  };
})();
