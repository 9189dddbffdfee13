"""OHIF v3 at /viewer/: the built files of the `@ohif/app` npm package (`make ohif` puts its
dist/ in var/ohif, outside git; PACS_OHIF_DIR may point elsewhere), served to logged-in users
only, with its configuration written here: our /dicomweb/ as its one data source, reached with
the browser's own session (same origin, so OHIF's requests carry the session cookie).

OHIF is built for the site root: index.html is rewritten so that its public path is /viewer/,
and so is the webpack runtime's (`__webpack_require__.p = "/"` in the app bundle and in each
worker's bundle, from which every further bundle, worker and codec is loaded), and so are the
fonts its style sheets name (`url(/...)`). These small rewrites are made once per version of a
file, into DATA_DIR/viewer-files, and the copies are then sent as files are (OHIF's app bundle
is 15 MB: reading and rewriting it for each browser cost ~20 ms of CPU and 30 MB of memory).
OHIF needs inline and evaluated script (and WebAssembly for its codecs): its pages get
their own Content-Security-Policy, still limited to our origin.
"""

import mimetypes
import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse

PREFIX = "/viewer/"
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:",
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])
BUNDLE_CACHE = "private, max-age=86400"
NOT_INSTALLED = ("OHIF is not installed on this server: run `make ohif` (needs npm) and reload. "
                 "The built-in viewer on each study page still works.")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")


def ohif_dir() -> Path:
    return Path(settings.PACS_OHIF_DIR or settings.BASE_DIR / "var" / "ohif")


def config_js(request) -> str:
    """OHIF's window.config: our DICOMweb as the data source, study list on, no extras."""
    import json

    root = request.build_absolute_uri("/dicomweb")
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "dicomweb",
        "configuration": {
            "friendlyName": "PacsOne",
            "name": "pacsone",
            "wadoUriRoot": request.build_absolute_uri("/wado"),
            "qidoRoot": root,
            "wadoRoot": root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "staticWado": False,
            "singlepart": "bulkdata,video",
            "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True},
        },
    }
    config = {
        "routerBasename": PREFIX.rstrip("/"),
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "dicomweb",
        "dataSources": [source],
    }
    return f"window.config = {json.dumps(config, indent=1)};\n"


@login_required
def app_config(request):
    response = HttpResponse(config_js(request), content_type="text/javascript; charset=utf-8")
    response["Content-Security-Policy"] = CSP
    return response


REWRITES = {
    ".js": (b'__webpack_require__.p = "/";', f'__webpack_require__.p = "{PREFIX}";'.encode()),
    ".css": (b"url(/", f"url({PREFIX}".encode()),
}


_served: dict[tuple[str, int, int], Path] = {}  # (bundle, mtime, size) -> the file to send for it
MAX_REMEMBERED = 1000


def _served_file(path: Path) -> Path:
    """The bundle or style sheet itself, or its copy with the root-relative paths moved under
    /viewer/ (made at its first request, again when the file changes)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    served = _served.get(key)
    if served is not None and served.exists():
        return served
    folder = Path(settings.DATA_DIR) / "viewer-files"
    copy = folder / f"{stat.st_mtime_ns}-{stat.st_size}-{path.name}"
    if not copy.exists():
        old, new = REWRITES[path.suffix]
        data = path.read_bytes()
        if old in data:
            _write_copy(folder, copy, path.name, data.replace(old, new))
        else:
            copy = path  # nothing to move: sent as it is
    if len(_served) >= MAX_REMEMBERED:
        _served.clear()
    _served[key] = copy
    return copy


def _write_copy(folder: Path, copy: Path, name: str, data: bytes) -> None:
    """Written whole before it is visible (web workers may make it at once), replacing the copies
    of earlier versions of the same file."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{copy.name}.{os.getpid()}.partial"
    partial.write_bytes(data)
    os.replace(partial, copy)
    for earlier in folder.glob(f"*-{name}"):
        if earlier != copy:
            earlier.unlink(missing_ok=True)


def _index(folder: Path) -> HttpResponse:
    html = (folder / "index.html").read_text(encoding="utf-8")
    html = html.replace("window.PUBLIC_URL = '/'", f"window.PUBLIC_URL = '{PREFIX}'")
    html = html.replace('href="/', f'href="{PREFIX}').replace('src="/', f'src="{PREFIX}')
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = CSP
    return response


@login_required
def viewer(request, name: str = ""):
    folder = ohif_dir()
    if not (folder / "index.html").is_file():
        return HttpResponse(NOT_INSTALLED, status=503, content_type="text/plain; charset=utf-8")
    if name in ("", "index.html"):
        return _index(folder)
    root = folder.resolve()
    target = (root / name).resolve()
    if root not in target.parents:
        raise Http404("Not found.")
    if not target.is_file():
        # A route of OHIF's own (/viewer/viewer?StudyInstanceUIDs=...): its page, which routes it.
        if "." in name.rsplit("/", 1)[-1]:
            raise Http404("Not found.")
        return _index(folder)
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.parent == root and target.suffix in REWRITES:
        target = _served_file(target)
    response = FileResponse(open(target, "rb"), content_type=content_type)
    response["Cache-Control"] = BUNDLE_CACHE
    response["Content-Security-Policy"] = CSP
    return response
