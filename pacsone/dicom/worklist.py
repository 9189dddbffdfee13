"""Modality Worklist SCP (PS3.4 K.6): C-FIND on the Modality Worklist Information Model,
answered from the scheduled procedure steps that HL7 orders made (hl7.models.ScheduledStep).

Matching as dcmtk's wlmscpfs does it: an empty key is universal; text keys match a single value
or `*`/`?` wildcards; the patient's name case-insensitively; the scheduled start date and time
each match a single value or a range (`A-B`, `-B`, `A-`). Keys we do not match on are returned
(empty when we have no value). Steps scheduled or in progress are listed unless the query asks
for a Scheduled Procedure Step Status. Every answer carries the (0008,0005) its text is written in.
"""

import logging

from django.db.models import Q
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dsutils import encode
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import ModalityWorklistInformationFind

from audit.journal import Action, Outcome, record

from .. import matching
from ..humanize import count as plural
from . import charsets, policy
from .net import commands, status, wire
from .net.acceptor import AcceptedAssociation, AssociationEnded, Message
from .qr import UNCOMPRESSED

log = logging.getLogger(__name__)

MAX_ANSWERS = 1000
SPS = "ScheduledProcedureStepSequence"

# Top-level keys: keyword -> (ScheduledStep field, how it matches)
TOP = {
    "PatientName": ("patient_name", "name"),
    "PatientID": ("patient_id", "text"),
    "IssuerOfPatientID": ("issuer_of_patient_id", "text"),
    "PatientBirthDate": ("birth_date", "date"),
    "PatientSex": ("sex", "text"),
    "AccessionNumber": ("accession_number", "text"),
    "RequestedProcedureID": ("requested_procedure_id", "text"),
    "RequestedProcedureDescription": ("requested_procedure_description", "text"),
    "StudyInstanceUID": ("study_instance_uid", "uid"),
    "ReferringPhysicianName": ("referring_physician_name", "person"),
}
# Keys inside the Scheduled Procedure Step Sequence's item.
STEP = {
    "Modality": ("modality", "text"),
    "ScheduledStationAETitle": ("station_ae_title", "text"),
    "ScheduledStationName": ("station_name", "text"),
    "ScheduledProcedureStepStartDate": ("start_date", "date"),
    "ScheduledProcedureStepStartTime": ("start_time", "time"),
    "ScheduledProcedureStepDescription": ("description", "text"),
    "ScheduledProcedureStepID": ("step_id", "text"),
    "ScheduledPerformingPhysicianName": ("performing_physician_name", "person"),
    "ScheduledProcedureStepStatus": ("state", "text"),
}
TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT"}


class WorklistQueryError(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = code, reason


def contexts() -> list[PresentationContext]:
    return [build_context(ModalityWorklistInformationFind, UNCOMPRESSED)]


def _range_q(field: str, value: str, width: int, pad_end: str) -> Q:
    """A date (width 8) or time (width 6) as stored text: a single value, or a range."""
    value = value.replace(":", "").strip()
    try:
        parts = matching.range_parts(value)
    except ValueError as error:
        raise WorklistQueryError(status.UNABLE_TO_PROCESS, str(error)) from None
    if parts is None:
        if width == 6:  # a time matches the stored time's first digits (0800 = 08:00:xx)
            return Q(**{f"{field}__startswith": value.split(".")[0]})
        return Q(**{field: value})
    start, end = parts
    condition = Q()
    if start:
        condition &= Q(**{f"{field}__gte": start.split(".")[0].ljust(width, "0")})
    if end:
        condition &= Q(**{f"{field}__lte": end.split(".")[0].ljust(width, pad_end)})
    return condition


def _key_q(field: str, kind: str, value) -> Q:
    text = "" if value is None else str(value).strip()
    if text in ("", "*"):
        return Q()
    try:
        if kind == "name":
            return matching.person_name_q("patient_name_search", text.upper(),
                                          lambda f, p: matching.wildcard_q(f, p))
        if kind == "person":
            return matching.wildcard_q(field, text, case_insensitive=True)
        if kind == "date":
            return _range_q(field, text, 8, "9")
        if kind == "time":
            return _range_q(field, text, 6, "9")
        if kind == "uid":
            return Q(**{f"{field}__in": [uid.strip() for uid in text.split("\\")]})
        return matching.wildcard_q(field, text)
    except matching.PatternError as error:
        raise WorklistQueryError(status.UNABLE_TO_PROCESS, str(error)) from None


def matching_steps(identifier: Dataset):
    """The steps the identifier matches, in schedule order."""
    from hl7.models import ScheduledStep

    condition = Q()
    for keyword, (field, kind) in TOP.items():
        if keyword in identifier:
            condition &= _key_q(field, kind, identifier[keyword].value)
    item = None
    if SPS in identifier:
        sequence = identifier[SPS].value
        if len(sequence) > 1:
            raise WorklistQueryError(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                                     "the Scheduled Procedure Step Sequence of a query holds one item")
        item = sequence[0] if sequence else None
    asked_state = False
    if item is not None:
        for keyword, (field, kind) in STEP.items():
            if keyword in item:
                condition &= _key_q(field, kind, item[keyword].value)
                asked_state |= keyword == "ScheduledProcedureStepStatus" and bool(str(item[keyword].value or "").strip())
    steps = ScheduledStep.objects.filter(condition)
    if not asked_state:
        steps = steps.filter(state__in=[ScheduledStep.State.SCHEDULED, ScheduledStep.State.IN_PROGRESS])
    return steps.order_by("start_date", "start_time", "pk")[:MAX_ANSWERS]


def _value(step, field: str):
    return getattr(step, field) or None


def answer_for(identifier: Dataset, step) -> Dataset:
    """The answer identifier: every key of the query, with this step's values."""
    ds = Dataset()
    texts = []
    for element in identifier:
        keyword = element.keyword
        if keyword in ("SpecificCharacterSet", ""):
            continue
        if keyword == SPS:
            asked = element.value[0] if len(element.value) else Dataset()
            item = Dataset()
            for sub in asked:
                field = STEP.get(sub.keyword, (None,))[0]
                value = _value(step, field) if field else None
                item.add_new(sub.tag, sub.VR, value)
                if sub.VR in TEXT_VRS and value and not str(value).isascii():
                    texts.append(str(value))
            ds.add_new(element.tag, "SQ", Sequence([item]))
            continue
        if element.VR == "SQ":
            ds.add_new(element.tag, "SQ", Sequence([]))
            continue
        field = TOP.get(keyword, (None,))[0]
        value = _value(step, field) if field else None
        ds.add_new(element.tag, element.VR, value)
        if element.VR in TEXT_VRS and value and not str(value).isascii():
            texts.append(str(value))
    charset = charsets.answer_charset(charsets.query_charset(identifier), texts)
    if charset:
        ds.SpecificCharacterSet = charset
    return ds


def handle_worklist_find(assoc: AcceptedAssociation, message: Message) -> None:
    requestor = assoc.requestor
    target = "C-FIND modality worklist"

    def answer(code: int, dataset: bytes | None = None, reason: str | None = None) -> None:
        assoc.send_response(message, commands.C_FIND_RSP, code, dataset, error_comment=reason[:64] if reason else None)

    def journal(detail: str, outcome=Outcome.SUCCESS) -> None:
        assoc.after_reply(lambda: record(Action.QUERY, ae_title=requestor.ae_title, address=requestor.address,
                                         target=target, outcome=outcome, detail=detail))

    access = policy.may_query(policy.caller_of(assoc))
    if not access.allowed:
        record(Action.QUERY, ae_title=requestor.ae_title, address=requestor.address, target=target,
               outcome=Outcome.DENIED, detail=f"refused (0x0124): {access.reason}")
        answer(status.NOT_AUTHORIZED, reason=access.reason)
        return
    syntax = message.context.transfer_syntax
    count = 0
    try:
        try:
            identifier = message.identifier()
        except Exception as error:
            raise WorklistQueryError(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, f"unreadable identifier: {error}") from None
        for step in list(matching_steps(identifier)):
            if assoc.is_cancelled(message):
                answer(status.CANCEL)
                journal(f"cancelled after {plural(count, 'answer', 'answers')}")
                return
            encoded = encode(answer_for(identifier, step), syntax.is_implicit_VR, syntax.is_little_endian)
            if encoded is None:  # pynetdicom could not encode it (logged by pynetdicom)
                raise WorklistQueryError(status.UNABLE_TO_PROCESS, f"cannot encode the answer for step {step.pk}")
            count += 1
            answer(status.PENDING, encoded)
    except WorklistQueryError as error:
        answer(error.status, reason=error.reason)
        journal(f"refused: {error.reason}", Outcome.FAILURE)
        return
    except (AssociationEnded, wire.ConnectionClosed, OSError):
        raise
    except Exception as error:  # a database failure must not take the association down
        log.exception("worklist c-find failed calling_ae=%s", requestor.ae_title)
        answer(status.UNABLE_TO_PROCESS, reason=f"query failed: {type(error).__name__}")
        journal(f"failed: {error}", Outcome.FAILURE)
        return
    answer(status.SUCCESS)
    journal(plural(count, 'answer', 'answers'))


SERVICES = {(commands.C_FIND_RQ, str(ModalityWorklistInformationFind)): handle_worklist_find}
