"""OHIF's time to first image in headless Chromium (Playwright, Debian's /usr/bin/chromium): from
the navigation to the viewer URL of a study until its viewport shows the image (the canvas,
screenshot every ~0.1 s, has a body on black), and until the first frame's answer arrived. Each
run is a fresh browser context (nothing cached); the median of the runs is reported.

For our server OHIF is served by the server itself at /viewer/ (after a login). For Orthanc the
same OHIF files are served by a small static server here (the dist is built for the site root,
so it is served as it is, with an app-config.js naming Orthanc's /dicom-web/), and Chromium runs
with --disable-web-security: Orthanc 1.10 sends no CORS headers, and this way OHIF's DICOMweb
requests go straight to Orthanc, with no proxy in between to slow them.
"""

import http.server
import io
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TIMEOUT = 120.0


def orthanc_config_js(dicomweb_root: str) -> str:
    """OHIF's window.config for Orthanc's DICOMweb plugin (as OHIF's own Orthanc example sets it)."""
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb", "sourceName": "dicomweb",
        "configuration": {
            "friendlyName": "Orthanc", "name": "orthanc", "qidoRoot": dicomweb_root, "wadoRoot": dicomweb_root,
            "wadoUriRoot": dicomweb_root, "qidoSupportsIncludeField": False, "supportsReject": False,
            "imageRendering": "wadors", "thumbnailRendering": "wadors", "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False, "supportsWildcard": True, "staticWado": False,
            "singlepart": "bulkdata,video", "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True},
        },
    }
    config = {"routerBasename": "/", "extensions": [], "modes": [], "showStudyList": True,
              "maxNumberOfWebWorkers": 2, "showWarningMessageForCrossOrigin": False,
              "investigationalUseDialog": {"option": "never"}, "defaultDataSourceName": "dicomweb",
              "dataSources": [source]}
    return f"window.config = {json.dumps(config)};\n"


def serve_ohif(folder: Path, config_js: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    """OHIF's built files on a free loopback port, app-config.js replaced, OHIF's own routes
    (/viewer?...) answered with index.html."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/app-config.js":
                return self._send(config_js.encode(), "text/javascript")
            if path == "/" or not (folder / path.lstrip("/")).is_file() and "." not in path.rsplit("/", 1)[-1]:
                return self._send((folder / "index.html").read_bytes(), "text/html")
            return super().do_GET()

        def _send(self, body: bytes, content_type: str):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _shows_image(page) -> bool:
    """Does the viewport show the image? (A page screenshot of the canvas's box: an element
    screenshot waits for the element to be still, which a viewport being laid out is not.)"""
    canvas = page.locator(".cornerstone-canvas").first
    try:
        box = canvas.bounding_box(timeout=1000) if canvas.count() else None
        if not box or box["width"] < 2 or box["height"] < 2:
            return False
        shot = page.screenshot(clip=box, timeout=5000)
    except Exception:  # the page is still changing (navigation, layout): look again
        return False
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    return bool(pixels.size) and pixels.max() > 100 and pixels.std() > 15


def one_run(browser, url: str, login=None, screenshot: Path | None = None) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        if login is not None:
            login(page)
        first_frame, finished = [], []
        page.on("response", lambda response: first_frame.append(time.perf_counter())
                if "/frames/" in response.url and not first_frame else None)
        page.on("requestfinished", lambda request: finished.append((request.url, time.perf_counter())))
        started = time.perf_counter()
        page.goto(url)
        deadline = started + TIMEOUT
        while not _shows_image(page):
            if time.perf_counter() > deadline:
                page.screenshot(path=str(screenshot or "ohif-timeout.png"))
                raise RuntimeError(f"OHIF showed no image within {TIMEOUT:.0f} s at {url}")
            time.sleep(0.05)
        shown = time.perf_counter() - started
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        # Where the time went: each request that finished before the image showed, in order.
        waterfall = [(round(at - started, 3), url.split("?")[0][-90:]) for url, at in finished
                     if at - started <= shown]
        return {"first_image_s": shown, "first_frame_s": (first_frame[0] - started) if first_frame else None,
                "requests_before_image": waterfall}
    finally:
        context.close()


def time_to_first_image(url: str, *, login=None, runs: int = 3, web_security: bool = True,
                        screenshot: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + ([] if web_security else ["--disable-web-security"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            results = [one_run(browser, url, login, screenshot if number == 0 else None) for number in range(runs)]
        finally:
            browser.close()
    firsts = [r["first_frame_s"] for r in results if r["first_frame_s"] is not None]
    return {"first_image_s": statistics.median(r["first_image_s"] for r in results),
            "first_frame_s": statistics.median(firsts) if firsts else None,
            "runs": results}
