"""Film sheets for DICOM print: which images go on which sheet, each image as a printer gets it,
and a PNG preview of each sheet with its layout's cells.

Images are rendered by pacsone.rendering with their window (the header's, else their range):
8-bit grayscale (MONOCHROME2) for a grayscale printer, RGB for a colour one, first frame of a
multi-frame image. Each is bounded to MAX_IMAGE_SIDE pixels on its longest side, so that one
large image cannot fill a printer's memory or a film box's association.
"""

import io
import math
import re

from PIL import Image, ImageDraw

from . import rendering
from .models import Instance, Printer

MAX_PRINT_IMAGES = 200  # images of one print (a 1x1 layout: as many sheets)
MAX_IMAGE_SIDE = 1024  # pixels of an image sent to a printer, longest side
PREVIEW_HEIGHT = 640  # pixels of a preview sheet's longer side
GAP = 4  # pixels between preview cells
FILM_MM = {"A4": (210, 297), "A3": (297, 420)}
FILM_SIZE = re.compile(r"^(\d+(?:_5)?)(IN|CM)X(\d+)(IN|CM)$")


IMAGE_ORDER = ("series__series_number", "series_id", "instance_number", "pk")


def printable_images():
    """Instances with pixel rows (images, not reports) in print order; the print page narrows
    it to the studies, series and images pacsone.access let the user reach."""
    return Instance.objects.select_related("storage_location", "series__study__patient").filter(
        header__has_key="00280010").defer("header").order_by(*IMAGE_ORDER)


def sheets(items: list, layout: tuple[int, int]) -> list[list]:
    """`items` cut into sheets of columns x rows cells, in order (the last one may be part full)."""
    per_sheet = layout[0] * layout[1]
    return [items[start:start + per_sheet] for start in range(0, len(items), per_sheet)]


def print_image(instance: Instance, color: bool) -> Image.Image:
    """The image a printer receives: windowed, grayscale ("L") or RGB, at most MAX_IMAGE_SIDE."""
    image = rendering.to_image(rendering.read_instance(instance))
    image = image.convert("RGB" if color else "L")
    if max(image.size) > MAX_IMAGE_SIDE:
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    return image


def film_aspect(film_size_id: str, orientation: str) -> float:
    """Width / height of a film as the printer lays it out (portrait: the shorter side across)."""
    if film_size_id in FILM_MM:
        width, height = FILM_MM[film_size_id]
    else:
        match = FILM_SIZE.match(film_size_id)
        width, height = ((float(match[1].replace("_5", ".5")), float(match[3].replace("_5", ".5")))
                         if match else (14.0, 17.0))
    short, long = sorted((width, height))
    return long / short if orientation == Printer.Orientation.LANDSCAPE else short / long


def _cell_image(instance: Instance, side: int, color: bool) -> Image.Image | None:
    """A cell's picture from the render cache (the default window at a small size), or None
    when the image cannot be rendered (the preview says so in the cell)."""
    try:
        data = rendering.render(instance, rendering.RenderRequest(size=max(8, min(side, rendering.MAX_SIZE))))
    except rendering.RenderError:
        return None
    return Image.open(io.BytesIO(data)).convert("RGB" if color else "L").convert("RGB")


def preview_png(instances: list[Instance], layout: tuple[int, int], film_size_id: str, orientation: str,
                color: bool) -> bytes:
    """One sheet as the printer would lay it out: black film, the layout's cells (empty ones
    outlined), each image fitted into its cell."""
    aspect = film_aspect(film_size_id, orientation)
    height = PREVIEW_HEIGHT if aspect <= 1 else round(PREVIEW_HEIGHT / aspect)
    width = round(height * aspect)
    columns, rows = layout
    cell_w = (width - GAP * (columns + 1)) // columns
    cell_h = (height - GAP * (rows + 1)) // rows
    sheet = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for index in range(columns * rows):
        x = GAP + (index % columns) * (cell_w + GAP)
        y = GAP + (index // columns) * (cell_h + GAP)
        draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), outline=(70, 70, 70))
        if index >= len(instances):
            continue
        picture = _cell_image(instances[index], max(cell_w, cell_h), color)
        if picture is None:
            draw.text((x + 6, y + 6), "cannot be rendered", fill=(220, 80, 80))
            continue
        scale = min(cell_w / picture.width, cell_h / picture.height)
        fitted = picture.resize((max(1, math.floor(picture.width * scale)), max(1, math.floor(picture.height * scale))),
                                Image.Resampling.LANCZOS)
        sheet.paste(fitted, (x + (cell_w - fitted.width) // 2, y + (cell_h - fitted.height) // 2))
    out = io.BytesIO()
    sheet.save(out, "PNG", compress_level=3)
    return out.getvalue()
