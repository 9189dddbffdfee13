"""Render a frame of a stored instance to PNG or JPEG, with a window, and cache the result.

Pixels are decoded by pydicom with the pylibjpeg plugins (JPEG baseline/extended/lossless,
JPEG-LS, JPEG 2000, RLE; deflate and big endian by pydicom itself). Grayscale goes through the
Modality LUT (pydicom's `apply_modality_lut`), then a linear window (the user's, the header's
first Window Center/Width) or the header's VOI LUT table (pydicom's `apply_voi_lut`), else the
frame's own range; MONOCHROME1 is inverted. Colour (RGB, YBR converted by pydicom, palette)
is shown as stored. What cannot be decoded raises `RenderError` with a reason for the user.

Rendered images in their default window (and thumbnails) are kept under
`<data>/cache/<aa>/<content-sha256>/`, named from validated numbers only (invariant 5); a
replaced file has a new SHA-256, so stale images are never served.
"""

import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array
from pydicom.uid import UID

from . import storage
from .models import Instance
from .humanize import count

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 160
MAX_SIZE = 4096
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}
# Transfer syntaxes of video: nothing in pydicom/pylibjpeg decodes them.
VIDEO_SYNTAXES = {
    "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile",
    "1.2.840.10008.1.2.4.101": "MPEG2 High Profile",
    "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264",
    "1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible",
    "1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 for 2D video",
    "1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 for 3D video",
    "1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 stereo",
    "1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile",
    "1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile",
}


class RenderError(Exception):
    """This instance (or frame) cannot be shown; the message says why, for the user."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float


@dataclass(frozen=True)
class RenderRequest:
    frame: int = 0
    window: Window | None = None
    size: int | None = None  # longest side in pixels; None: as stored
    fmt: str = "png"

    def cache_name(self) -> str:
        window = f"c{self.window.center:g}_w{self.window.width:g}" if self.window else "default"
        return f"f{self.frame}_{window}_s{self.size or 0}.{self.fmt}"


def parse_request(params, *, thumbnail: bool = False) -> RenderRequest:
    """A RenderRequest from query parameters `frame`, `wc`, `ww`, `size`, `format`; ValueError
    with a message for bad values."""
    try:
        frame = int(params.get("frame", 0) or 0)
        size = int(params["size"]) if params.get("size") else (THUMBNAIL_SIZE if thumbnail else None)
        center, width = params.get("wc", ""), params.get("ww", "")
        window = Window(float(center), float(width)) if center != "" and width != "" else None
    except ValueError:
        raise ValueError("frame and size must be whole numbers, wc and ww numbers") from None
    if frame < 0:
        raise ValueError("frame must be 0 or more")
    if size is not None and not 8 <= size <= MAX_SIZE:
        raise ValueError(f"size must be between 8 and {MAX_SIZE}")
    if window is not None and not (np.isfinite(window.center) and np.isfinite(window.width) and window.width >= 1):
        raise ValueError("ww must be at least 1 and wc a finite number")
    fmt = (params.get("format") or ("jpeg" if thumbnail else "png")).lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in FORMATS:
        raise ValueError("format must be png or jpeg")
    return RenderRequest(frame, window, size, fmt)


def read_instance(instance: Instance, *, pixels: bool = True) -> Dataset:
    try:
        with storage.open_stored(instance) as f:
            return dcmread(f, stop_before_pixels=not pixels)
    except FileNotFoundError:
        raise RenderError("the image file is missing from storage") from None


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _first(value):
    return value[0] if isinstance(value, (list, MultiValue)) else value


def header_window(ds: Dataset) -> Window | None:
    """The first Window Center/Width of a header or functional group (several may be given)."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        window = Window(float(_first(center)), float(_first(width)))
    except (TypeError, ValueError, IndexError):
        return None
    return window if window.width >= 1 else None


def _decode(ds: Dataset, frame: int) -> np.ndarray:
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax in VIDEO_SYNTAXES:
        raise RenderError(f"{VIDEO_SYNTAXES[syntax]} video cannot be shown in the viewer; download it instead")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise RenderError("this instance has no image (e.g. a report or a presentation state)")
    frames = number_of_frames(ds)
    if frame >= frames:
        raise RenderError(f"frame {frame} does not exist: the image has {count(frames, 'frame', 'frames')}")
    try:
        return pixel_array(ds, index=frame)
    except Exception as exc:  # decoders raise many kinds; the reason goes to the user
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        log.warning("render: cannot decode sop=%s syntax=%s: %s", ds.get("SOPInstanceUID"), syntax, exc)
        name = UID(syntax).name if syntax else "unknown transfer syntax"
        raise RenderError(f"the pixel data ({name}) cannot be decoded here: {reason}") from None


def default_window(ds: Dataset, frame: int = 0) -> Window | None:
    """The window a grayscale frame is shown in by default: the header's, the frame's (enhanced
    images), else the frame's whole range. None for colour images."""
    pixels = _decode(ds, frame)
    if pixels.ndim != 2 or str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        return None
    named = header_window(ds) or header_window(frame_group(ds, frame, "FrameVOILUTSequence"))
    if named is not None:
        return named
    values = modality_values(ds, pixels, frame)
    low, high = float(np.min(values)), float(np.max(values))
    return Window((low + high + 1) / 2, max(high - low + 1, 1))


def frame_group(ds: Dataset, frame: int, keyword: str) -> Dataset:
    """An enhanced multi-frame image's functional group (e.g. its window or rescale) for one
    frame: per-frame first, then shared; an empty dataset if there is none."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    for groups in ([per_frame[frame]] if frame < len(per_frame) else []) + list(shared[:1]):
        if groups.get(keyword):
            return groups[keyword][0]
    return Dataset()


def modality_values(ds: Dataset, pixels: np.ndarray, frame: int) -> np.ndarray:
    """Stored values to modality units (e.g. Hounsfield), with the header's rescale or LUT, or
    for enhanced images the frame's Pixel Value Transformation."""
    transform = frame_group(ds, frame, "PixelValueTransformationSequence")
    if "RescaleSlope" in transform and "RescaleSlope" not in ds:
        return pixels * float(transform.RescaleSlope) + float(transform.get("RescaleIntercept", 0))
    return apply_modality_lut(pixels, ds).astype(np.float64)


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """DICOM's linear window (PS3.3 C.11.2.1.2.1) onto 0..255."""
    low = window.center - 0.5 - (window.width - 1) / 2
    scaled = (values - low) / max(window.width - 1, 1) * 255.0
    return np.clip(scaled, 0, 255)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        return np.zeros(values.shape)
    return (values - low) / (high - low) * 255.0


def to_image(ds: Dataset, frame: int = 0, window: Window | None = None) -> Image.Image:
    """One frame as an 8-bit Pillow image."""
    pixels = _decode(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        try:
            pixels = apply_color_lut(pixels, ds)
        except Exception as exc:
            raise RenderError(f"the palette colour lookup table cannot be applied: {exc}") from None
        if pixels.dtype != np.uint8:  # palette entries are 16-bit
            pixels = (pixels >> 8).astype(np.uint8) if pixels.max() > 255 else pixels.astype(np.uint8)
        return Image.fromarray(pixels[..., :3], "RGB")
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):  # RGB; pydicom turned YBR into RGB
        if pixels.dtype != np.uint8:
            pixels = _stretch(pixels.astype(np.float64))
        return Image.fromarray(pixels[..., :3].astype(np.uint8), "RGB")
    if pixels.ndim != 2:
        raise RenderError(f"unsupported pixel layout {pixels.shape} ({photometric})")

    values = modality_values(ds, pixels, frame)
    window = window or header_window(ds) or header_window(frame_group(ds, frame, "FrameVOILUTSequence"))
    if window is not None:
        gray = apply_window(values, window)
    elif "VOILUTSequence" in ds:
        gray = _stretch(apply_voi_lut(pixels, ds).astype(np.float64))
    else:
        gray = _stretch(values)
    if photometric == "MONOCHROME1":
        gray = 255.0 - gray
    return Image.fromarray(np.rint(gray).astype(np.uint8), "L")


def encode(image: Image.Image, request: RenderRequest) -> bytes:
    if request.size:
        image = image.copy()
        image.thumbnail((request.size, request.size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    pil_format = FORMATS[request.fmt][0]
    if pil_format == "JPEG":
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, "PNG", compress_level=3)  # fast enough for scrolling, still small
    return out.getvalue()


def cache_folder(instance: Instance) -> Path:
    return Path(settings.DATA_DIR) / "cache" / instance.sha256[:2] / instance.sha256


def render(instance: Instance, request: RenderRequest) -> bytes:
    """The encoded image, from the cache when it has been rendered before. Only the default
    window is kept on disk: a window dragged in the viewer makes a new one at every step,
    which would fill the disk with images nobody asks for again."""
    cached = cache_folder(instance) / request.cache_name()
    if request.window is None:
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
    data = encode(to_image(read_instance(instance), request.frame, request.window), request)
    if request.window is None:
        _write_cache(cached, data)
    return data


def _write_cache(path: Path, data: bytes) -> None:
    """Atomically, and never fatally: a full disk only costs a re-render."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except OSError as exc:
        log.warning("render cache not written %s: %s", path, exc)


def warm_study_thumbnails(study_pk: int) -> int:
    """Render the thumbnail of each series' first image ahead of the first visit to the study's
    page (queued after ingest). What cannot be rendered is skipped: the page explains it."""
    from .models import Series

    thumbnail = parse_request({}, thumbnail=True)
    made = 0
    for series in Series.objects.filter(study_id=study_pk):
        first = series.instances.select_related("storage_location").order_by("instance_number", "pk").first()
        if first is None or (cache_folder(first) / thumbnail.cache_name()).exists():
            continue
        try:
            render(first, thumbnail)
            made += 1
        except RenderError:
            pass
    return made


def forget(instance: Instance) -> None:
    """Drop an instance's rendered images (when it is deleted)."""
    shutil.rmtree(cache_folder(instance), ignore_errors=True)


def content_type(request: RenderRequest) -> str:
    return FORMATS[request.fmt][1]


def modality_frame(ds: Dataset, frame: int = 0) -> tuple[np.ndarray, bool]:
    """One grayscale frame in modality units (e.g. Hounsfield) for the browser to window itself,
    and whether it is MONOCHROME1 (shown inverted). RenderError for colour images."""
    pixels = _decode(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if pixels.ndim != 2 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise RenderError("only grayscale frames are windowed in the browser")
    return modality_values(ds, pixels, frame), photometric == "MONOCHROME1"
