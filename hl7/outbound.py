"""Outbound notifications to HL7 destinations, sent over MLLP as jobs of the job layer.

Events: `received` (a study's images arrived), `read` (a study was marked read), `mpps` (a
modality completed a performed step). Each becomes an order status message (ORM^O01, ORC-1 SC,
ORC-5 CM) or, for `read`, a result message (ORU^R01, OBR-25 F), with the patient (PID), the
order (ORC/OBR: accession number in OBR-18) and the Study Instance UID (ZDS-1, as IHE SWF).

`send_notification(destination_pk, event, study_pk, step_pk)` sends one and returns the
receiver's ACK code; it raises NotificationError (transient: connection refused, timeout, AE;
permanent: AR, unknown destination) when the receiver did not accept it.
"""

import datetime
import logging
import socket

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message as Hl7Message
from hl7apy.core import Segment

from audit.journal import Action, Outcome, record
from pacsone.models import Study

from . import codec
from .listener import END, START, framed
from .models import Destination, ScheduledStep

log = logging.getLogger(__name__)

VERSION = "2.5"
MAX_ACK_BYTES = 64 * 1024


class NotificationError(Exception):
    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


def escape(value: str) -> str:
    """A value as HL7 text (HL7 v2 2.7 escape sequences)."""
    return (str(value or "").replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
            .replace("&", "\\T\\").replace("~", "\\R\\").replace("\r", "\\.br\\").replace("\n", "\\.br\\"))


def _segment(name: str, values: dict[int, str]) -> str:
    segment = Segment(name, version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    for number, value in sorted(values.items()):
        if value:
            setattr(segment, f"{name.lower()}_{number}", value)
    return segment.to_er7()


def _hl7_name(dicom_name: str) -> str:
    """DICOM PN (family^given^middle^prefix^suffix) -> HL7 XPN (family^given^middle^suffix^prefix)."""
    parts = ((dicom_name or "").split("=")[0].split("^") + [""] * 5)[:5]
    return "^".join(escape(p) for p in [parts[0], parts[1], parts[2], parts[4], parts[3]]).rstrip("^")


def build_message(destination: Destination, event: str, study: Study | None, step: ScheduledStep | None) -> str:
    """The notification's ER7 text."""
    patient_id = study.patient.patient_id if study else (step.patient_id if step else "")
    patient_name = study.patient.patient_name if study else (step.patient_name if step else "")
    birth = study.patient.birth_date.strftime("%Y%m%d") if study and study.patient.birth_date else (step.birth_date if step else "")
    sex = study.patient.sex if study else (step.sex if step else "")
    accession = (study.accession_number if study else "") or (step.accession_number if step else "")
    study_uid = study.study_instance_uid if study else (step.study_instance_uid if step else "")
    placer = step.placer_order_number if step else ""
    filler = (step.filler_order_number if step else "") or accession
    description = (study.study_description if study else "") or (step.description if step else "")
    modality = (study.modalities_in_study.split("\\")[0] if study and study.modalities_in_study else "") or \
        (step.modality if step else "")
    kind, trigger = ("ORU", "R01") if event == Destination.Event.READ else ("ORM", "O01")
    header = Hl7Message(f"{kind}_{trigger}", version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = header.msh
    msh.msh_3 = escape(settings.PACS_HL7_APPLICATION)
    if settings.PACS_HL7_FACILITY:
        msh.msh_4 = escape(settings.PACS_HL7_FACILITY)
    if destination.receiving_application:
        msh.msh_5 = escape(destination.receiving_application)
    if destination.receiving_facility:
        msh.msh_6 = escape(destination.receiving_facility)
    msh.msh_9 = f"{kind}^{trigger}^{kind}_{trigger}"
    msh.msh_10 = codec.new_control_id()
    msh.msh_11 = "P"
    msh.msh_18 = "UNICODE UTF-8"
    now = timezone.now().strftime("%Y%m%d%H%M%S")
    segments = [
        header.to_er7(),
        _segment("PID", {3: escape(patient_id), 5: _hl7_name(patient_name), 7: birth, 8: escape(sex)}),
        _segment("ORC", {1: "SC" if kind == "ORM" else "RE", 2: escape(placer), 3: escape(filler),
                         5: "CM", 9: now}),
        _segment("OBR", {1: "1", 2: escape(placer), 3: escape(filler), 4: f"^{escape(description)}" if description else "",
                         18: escape(accession), 24: escape(modality), 25: "F" if kind == "ORU" else "",
                         22: now}),
        _segment("ZDS", {1: f"{escape(study_uid)}^{escape(settings.PACS_HL7_APPLICATION)}^Application^DICOM"}),
    ]
    return "\r".join(segments) + "\r"


def exchange(host: str, port: int, payload: bytes, timeout: float) -> bytes:
    """Send one framed message and return the answer's bytes (between the blocks)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(framed(payload))
        answer = bytearray()
        while True:
            end = answer.find(END)
            if end != -1:
                start = answer.find(START)
                return bytes(answer[start + 1 if start != -1 else 0:end])
            if len(answer) > MAX_ACK_BYTES:
                raise NotificationError("the answer is larger than any ACK")
            data = sock.recv(65536)
            if not data:
                raise NotificationError("the receiver closed the connection without an ACK")
            answer += data


def ack_code(answer: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-3) of an ACK."""
    try:
        parsed, _codec = codec.parse(answer)
    except codec.Unreadable as error:
        raise NotificationError(f"unreadable ACK: {error}") from None
    msa = parsed.first("MSA")
    if msa is None:
        raise NotificationError("the answer has no MSA segment")
    return parsed.value(msa, 1).upper(), parsed.value(msa, 3)


def send_notification(destination_pk: int, event: str, study_pk: int | None = None, step_pk: int | None = None) -> str:
    """Send one notification; its ACK code, or NotificationError. Journaled either way."""
    destination = Destination.objects.filter(pk=destination_pk).first()
    if destination is None:
        raise NotificationError(f"HL7 destination {destination_pk} no longer exists", permanent=True)
    study = Study.objects.select_related("patient").filter(pk=study_pk).first() if study_pk else None
    step = ScheduledStep.objects.filter(pk=step_pk).first() if step_pk else None
    if study is None and step is None:
        raise NotificationError("the study of this notification no longer exists", permanent=True)
    text = build_message(destination, event, study, step)
    subject = {"patient_id": study.patient.patient_id if study else step.patient_id,
               "study_uid": study.study_instance_uid if study else step.study_instance_uid}
    target = f"HL7 {event} notification to {destination.name}"[:255]
    try:
        code, reason = ack_code(exchange(destination.host, destination.port, text.encode("utf-8"),
                                         settings.PACS_HL7_SEND_TIMEOUT))
        if code in ("AR", "CR"):
            raise NotificationError(f"rejected ({code}): {reason}", permanent=True)
        if code not in ("AA", "CA"):
            raise NotificationError(f"not accepted ({code or 'no code'}): {reason}")
    except (OSError, NotificationError) as error:
        record(Action.FORWARD, username="hl7", target=target, outcome=Outcome.FAILURE,
               detail=f"{destination.host}:{destination.port}: {error or type(error).__name__}"[:2000], **subject)
        if isinstance(error, NotificationError):
            raise
        raise NotificationError(f"{destination.host}:{destination.port}: {error or type(error).__name__}") from error
    record(Action.FORWARD, username="hl7", target=target, detail=f"{destination.host}:{destination.port}: {code}",
           **subject)
    return code


def notification_job(progress, destination_pk: int, event: str, study_pk: int | None, step_pk: int | None) -> str:
    from routing.jobs import PermanentError, TransientError

    progress.start(1)
    try:
        code = send_notification(destination_pk, event, study_pk, step_pk)
    except NotificationError as error:  # the job layer retries a transient failure with back-off
        raise (PermanentError if error.permanent else TransientError)(str(error)) from None
    progress.advance(1)
    return f"acknowledged {code}"


def queue_notifications(event: str, study_pk: int | None = None, step_pk: int | None = None) -> int:
    """One job per enabled destination that wants `event`; how many were queued or joined.
    A study arrives over several associations (an ingest batch each): its "received" waits until
    no instance came for PACS_ROUTING_QUIET_SECONDS, and later batches join the waiting job
    instead of sending the same notification again."""
    from routing.jobs import join_queued_job, start_job
    from routing.models import Job

    destinations = [d for d in Destination.objects.filter(enabled=True) if event in d.event_list()]
    study = Study.objects.filter(pk=study_pk).first() if study_pk else None
    coalesced = event == "received" and study is not None
    when = timezone.now() + datetime.timedelta(seconds=settings.PACS_ROUTING_QUIET_SECONDS) if coalesced else None
    for destination in destinations:
        key = f"hl7:{event}:{destination.pk}:{study_pk}" if coalesced else ""
        with transaction.atomic():
            if key and join_queued_job(key, when) is not None:
                continue
            start_job(Job.Kind.NOTIFY, f"HL7 {event} notification to {destination.name}", None,
                      "hl7.outbound.notification_job", destination.pk, event, study_pk, step_pk,
                      studies=[study] if study else (), not_before=when, dedupe_key=key)
    return len(destinations)
