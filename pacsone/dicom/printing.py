"""Print SCU: Basic Grayscale and Basic Color Print Management Meta SOP Classes (PS3.4 H).

One association per print: Film Session N-CREATE (copies, medium, destination); for each
sheet a Film Box N-CREATE (layout, orientation, film size, magnification), an Image Box N-SET
per image with its Basic Grayscale (8-bit MONOCHROME2) or Basic Color (RGB, colour-by-plane)
Image Sequence, Film Box N-ACTION (print) and N-DELETE; the Film Session N-DELETE at the end.

A printer that cannot be reached, times out or aborts raises `PrinterUnreachable` (worth a
retry); one that refuses the association, the colour or grayscale service, or answers a
failure status raises `PrintRefused` with the status in words (another try would fail alike).
"""

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from django.conf import settings
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    BasicColorImageBox,
    BasicColorPrintManagementMeta,
    BasicFilmBox,
    BasicFilmSession,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
    Printer as PrinterSOPClass,
    PrinterInstance,
    Verification,
)
from pynetdicom.status import GENERAL_STATUS, PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS

from ..models import Printer
from .net.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from .net.requestor import rejection_reason
from .scu import TIMEOUT_SECONDS, RejectionNote, no_delay

log = logging.getLogger(__name__)

PRINT_ACTION = 1  # Film Box N-ACTION type: print the sheet


class PrintError(Exception):
    pass


class PrinterUnreachable(PrintError):
    """Down, timed out or aborted: worth another attempt later."""


class PrintRefused(PrintError):
    """The printer said no (association, service or a failure status): another attempt would too."""


def status_words(code: int) -> str:
    """A status as a person reads it: "0xC603 (Image size is larger than image box size)"."""
    known = PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS.get(code) or GENERAL_STATUS.get(code)
    text = known[1] if known else ("failure" if 0xC000 <= code <= 0xCFFF else "unknown status")
    return f"0x{code:04X} ({text})"


def _is_failure(code: int) -> bool:
    return not (code == 0x0000 or 0xB000 <= code <= 0xBFFF or code == 0x0107 or code == 0x0116)


def _meta(printer: Printer):
    return BasicColorPrintManagementMeta if printer.color else BasicGrayscalePrintManagementMeta


def _service_name(printer: Printer) -> str:
    return "Basic Color Print Management" if printer.color else "Basic Grayscale Print Management"


class _Session:
    """An association with a printer; each DIMSE answer checked, warnings collected."""

    def __init__(self, printer: Printer):
        self.printer = printer
        self.meta = _meta(printer)
        self.warnings: list[str] = []
        ae = AE(ae_title=settings.PACS_AE_TITLE)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_SECONDS
        ae.add_requested_context(self.meta)
        # Verification too: a printer without the service asked for still accepts it, so the
        # association stands and the refusal can be named (pynetdicom aborts one with no context).
        ae.add_requested_context(Verification)
        self.created_uid = ""  # the Affected SOP Instance UID of the last N-CREATE response
        rejection = RejectionNote()
        self.assoc = ae.associate(printer.host, printer.port, ae_title=printer.ae_title,
                                  evt_handlers=[(evt.EVT_CONN_OPEN, no_delay), (evt.EVT_DIMSE_RECV, self._received),
                                                rejection.handler])
        if rejection.pdu is not None:
            reason = rejection_reason(rejection.pdu)
            if rejection.pdu.result == 0x02:  # rejected-transient (PS3.8 7.1.1.9)
                raise PrinterUnreachable(f"{printer.ae_title} rejected the association for now: {reason}")
            raise PrintRefused(f"{printer.ae_title} rejected the association: {reason}")
        if not self.assoc.is_established:
            raise PrinterUnreachable(f"{printer.ae_title} at {printer.host}:{printer.port} cannot be reached")

    def _received(self, event) -> None:
        if type(event.message).__name__ == "N_CREATE_RSP":
            self.created_uid = str(event.message.command_set.get("AffectedSOPInstanceUID", "") or "")

    def create(self, dataset: Dataset, class_uid, what: str) -> tuple[str, Dataset | None]:
        """N-CREATE with a UID of ours (the SCU may propose one, PS3.7 10.1.5); the printer's
        answer names the UID it used. (uid, attribute list)."""
        proposed = generate_uid()
        self.created_uid = ""
        attributes = self.check(self.assoc.send_n_create(dataset, class_uid, instance_uid=proposed,
                                                         meta_uid=self.meta), what)
        return self.created_uid or proposed, attributes

    def offers_service(self) -> bool:
        return any(cx.abstract_syntax == self.meta for cx in self.assoc.accepted_contexts)

    def require_service(self) -> None:
        if not self.offers_service():
            self.close()
            raise PrintRefused(f"{self.printer.ae_title} does not support {_service_name(self.printer)}")

    def check(self, answer, what: str) -> Dataset | None:
        """The answer's attribute list; raises for a missing answer or a failure status."""
        rsp, attributes = answer if isinstance(answer, tuple) else (answer, None)
        if rsp is None or "Status" not in rsp:
            self.assoc.abort()
            raise PrinterUnreachable(f"{self.printer.ae_title} did not answer {what} (timeout or aborted)")
        code = int(rsp.Status)
        if _is_failure(code):
            self.close()
            raise PrintRefused(f"{self.printer.ae_title} refused {what}: {status_words(code)}"
                               + (f" — {rsp.ErrorComment}" if rsp.get("ErrorComment") else ""))
        if code:
            self.warnings.append(f"{what}: {status_words(code)}")
        return attributes

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()


@dataclass
class FilmSettings:
    """What one print asks for; the printer's registered defaults unless the user chose."""
    display_format: str
    copies: int
    film_size_id: str
    orientation: str
    magnification_type: str = ""
    medium_type: str = ""
    film_destination: str = ""

    @classmethod
    def of(cls, printer: Printer, display_format: str = "", copies: int | None = None) -> "FilmSettings":
        return cls(display_format=display_format or printer.display_format, copies=copies or printer.copies,
                   film_size_id=printer.film_size_id, orientation=printer.orientation,
                   magnification_type=printer.magnification_type, medium_type=printer.medium_type,
                   film_destination=printer.film_destination)


@dataclass
class PrintReport:
    sheets: int = 0
    images: int = 0
    warnings: list[str] = field(default_factory=list)


def _film_session(film: FilmSettings) -> Dataset:
    ds = Dataset()
    ds.NumberOfCopies = str(film.copies)
    ds.PrintPriority = "MED"
    if film.medium_type:
        ds.MediumType = film.medium_type
    if film.film_destination:
        ds.FilmDestination = film.film_destination
    return ds


def _film_box(film: FilmSettings, session_uid: str) -> Dataset:
    ds = Dataset()
    ds.ImageDisplayFormat = film.display_format
    ds.FilmOrientation = film.orientation
    ds.FilmSizeID = film.film_size_id
    if film.magnification_type:
        ds.MagnificationType = film.magnification_type
    reference = Dataset()
    reference.ReferencedSOPClassUID = BasicFilmSession
    reference.ReferencedSOPInstanceUID = session_uid
    ds.ReferencedFilmSessionSequence = [reference]
    return ds


def image_box(position: int, image: Image.Image, color: bool) -> Dataset:
    """An Image Box N-SET: the image at `position` (1-based), 8 bits a sample, MONOCHROME2, or
    RGB colour-by-plane as PS3.4 H.4.3.2 requires of the Basic Color Image Box."""
    pixels = Dataset()
    pixels.Rows, pixels.Columns = image.height, image.width
    pixels.PixelAspectRatio = [1, 1]
    pixels.BitsAllocated = pixels.BitsStored = 8
    pixels.HighBit = 7
    pixels.PixelRepresentation = 0
    array = np.asarray(image, dtype=np.uint8)
    if color:
        pixels.SamplesPerPixel = 3
        pixels.PhotometricInterpretation = "RGB"
        pixels.PlanarConfiguration = 1
        array = np.ascontiguousarray(array.transpose(2, 0, 1))
    else:
        pixels.SamplesPerPixel = 1
        pixels.PhotometricInterpretation = "MONOCHROME2"
    data = array.tobytes()
    pixels.PixelData = data + (b"\0" if len(data) % 2 else b"")
    box = Dataset()
    box.ImageBoxPosition = position
    if color:
        box.BasicColorImageSequence = [pixels]
    else:
        box.BasicGrayscaleImageSequence = [pixels]
    return box


def print_films(printer: Printer, film: FilmSettings, sheets: Iterable[list[Image.Image]],
                printed: Callable[[int], None] | None = None) -> PrintReport:
    """Print each sheet (a list of images, at most the layout's cells) as one film box of one
    film session; `printed(sheet_number)` after each sheet the printer accepted."""
    session = _Session(printer)
    session.require_service()
    report = PrintReport()
    meta = session.meta
    box_class = BasicColorImageBox if printer.color else BasicGrayscaleImageBox
    try:
        session_uid, _ = session.create(_film_session(film), BasicFilmSession, "Film Session N-CREATE")
        for number, images in enumerate(sheets, start=1):
            box_uid, box = session.create(_film_box(film, session_uid), BasicFilmBox,
                                          f"Film Box N-CREATE (sheet {number})")
            boxes = list(box.get("ReferencedImageBoxSequence") or []) if box is not None else []
            if len(boxes) < len(images):
                session.close()
                raise PrintRefused(f"{printer.ae_title} made {len(boxes)} image boxes for layout "
                                   f"{film.display_format}; {len(images)} images do not fit")
            for position, (image, reference) in enumerate(zip(images, boxes), start=1):
                session.check(session.assoc.send_n_set(image_box(position, image, printer.color), box_class,
                                                       reference.ReferencedSOPInstanceUID, meta_uid=meta),
                              f"Image Box N-SET (sheet {number}, image {position})")
                report.images += 1
            session.check(session.assoc.send_n_action(None, PRINT_ACTION, BasicFilmBox, box_uid, meta_uid=meta),
                          f"Film Box N-ACTION print (sheet {number})")
            session.check(session.assoc.send_n_delete(BasicFilmBox, box_uid, meta_uid=meta),
                          f"Film Box N-DELETE (sheet {number})")
            report.sheets += 1
            if printed:
                printed(number)
        session.check(session.assoc.send_n_delete(BasicFilmSession, session_uid, meta_uid=meta),
                      "Film Session N-DELETE")
    finally:
        session.close()
    report.warnings = session.warnings
    return report


def _printer_status(session: _Session) -> str:
    """The Printer SOP instance's status in words (N-GET of all its attributes; a printer need
    not answer it)."""
    rsp, attributes = session.assoc.send_n_get([], PrinterSOPClass, PrinterInstance, meta_uid=session.meta)
    if rsp is None or "Status" not in rsp:
        raise PrinterUnreachable(f"{session.printer.ae_title} did not answer Printer N-GET (timeout or aborted)")
    code = int(rsp.Status)
    if _is_failure(code) or attributes is None:
        return f"printer status not available ({status_words(code)})"
    state = attributes.get("PrinterStatus", "") or "not given"
    info = attributes.get("PrinterStatusInfo", "")
    name = " ".join(str(attributes.get(k, "")) for k in ("Manufacturer", "ManufacturerModelName", "PrinterName"))
    said = f"printer status {state}" + (f" ({info})" if info and info != state else "")
    return said + (f", {name.strip()}" if name.strip() else "")


def verify(printer: Printer) -> str:
    """C-ECHO, then the printer's status (N-GET on the Printer SOP instance) when it offers it:
    a sentence for the administrator. Raises PrintError when the printer cannot be used."""
    session = _Session(printer)
    try:
        parts = []
        if any(cx.abstract_syntax == Verification for cx in session.assoc.accepted_contexts):
            session.check(session.assoc.send_c_echo(), "C-ECHO")
            parts.append("answered C-ECHO")
        if not session.offers_service():
            raise PrintRefused(f"{printer.ae_title} does not support {_service_name(printer)}")
        parts.append(f"offers {_service_name(printer)}")
        parts.append(_printer_status(session))
        return f"{printer.ae_title}: " + ", ".join(parts)
    finally:
        session.close()
