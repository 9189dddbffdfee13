"""STOW-RS (PS3.18 10.5): multipart/related application/dicom parts, each stored through the one
ingest path (pacsone/ingest.py) with the caller as origin. Needs Upload or Import. A person
without View may not add to a study or patient already here that they may not see (the rule of
uploads, pacsone.access.may_add_to). The body is bounded by PACS_UPLOAD_MAX_MB (413 beyond).

Answer (PS3.18 10.5.3): DICOM JSON with the Referenced SOP Sequence (stored instances, with
their RetrieveURL) and the Failed SOP Sequence (with a Failure Reason); 200 when every part was
stored, 202 when some were, 409 when none was. The reasons also go, as text, into a Warning
header, one per failed part. What was stored is journaled once per study (the ingest batch).
"""

import logging
import os

from django.conf import settings
from pydicom import dcmread

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, Outcome as JournalOutcome, record

from .. import storage
from ..access import deny, may_add_to
from ..ingest import Origin, Outcome, PostIngestBatch, ingest_file
from . import multipart
from .dicom_json import BadRequest, absolute_url, json_response, text_response
from .wado import DICOM, instance_url

log = logging.getLogger(__name__)

# Failure Reasons (PS3.18 Table 10.5.3-2, the C-STORE statuses of PS3.4).
PROCESSING_FAILURE = 0x0110
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
REFERENCED_SOP = "00081199"
FAILED_SOP = "00081198"
RETRIEVE_URL = "00081190"
NOT_YOURS = "its study or Patient ID is already in the archive for studies you may not see"


def _header(path) -> dict[str, str]:
    """The few attributes the answer and the access rule need; empty when unreadable."""
    try:
        ds = dcmread(path, stop_before_pixels=True, force=True, specific_tags=[
            "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "PatientID", "IssuerOfPatientID"])
        return {keyword: str(ds.get(keyword, "") or "").strip() for keyword in
                ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "PatientID", "IssuerOfPatientID")}
    except Exception:
        return {}


class _Stower:
    def __init__(self, request, study_uid: str | None):
        self.request = request
        self.study_uid = study_uid
        self.user = request.user
        self.origin = Origin("stow", address=request.META.get("REMOTE_ADDR", ""), username=self.user.get_username())
        self.batch = PostIngestBatch()
        self.added: set[tuple] = set()
        self.referenced: list[dict] = []
        self.failed: list[dict] = []
        self.reasons: list[str] = []

    def fail(self, number: int, keys: dict, code: int, reason: str) -> None:
        item = {"00081197": {"vr": "US", "Value": [code]}}
        if keys.get("SOPClassUID"):
            item["00081150"] = {"vr": "UI", "Value": [keys["SOPClassUID"]]}
        if keys.get("SOPInstanceUID"):
            item["00081155"] = {"vr": "UI", "Value": [keys["SOPInstanceUID"]]}
        self.failed.append(item)
        self.reasons.append(f"part {number}: {reason}")

    def refusal(self, keys: dict) -> str | None:
        """Why this part may not be stored by this caller, if it may not."""
        if self.study_uid and keys.get("StudyInstanceUID") and keys["StudyInstanceUID"] != self.study_uid:
            return f"its Study Instance UID is not {self.study_uid}"
        study, patient = ("study", keys.get("StudyInstanceUID", "")), (
            "patient", keys.get("PatientID", ""), keys.get("IssuerOfPatientID", ""))
        if not keys or study in self.added:
            return None
        if may_add_to(self.user, patient[1], patient[2], study[1], new_patient=patient in self.added):
            return None
        record(Action.UPLOAD, request=self.request, patient_id=patient[1][:64], study_uid=study[1][:64],
               target="stow of a file", outcome=JournalOutcome.DENIED, detail=NOT_YOURS)
        return NOT_YOURS

    def store_part(self, number: int, body, part: multipart.Part) -> None:
        part_type = multipart.parse_media_type(part.headers.get("content-type", DICOM)).media_type
        if part_type != DICOM:
            self.fail(number, {}, CANNOT_UNDERSTAND, f"part type {part_type[:60]} is not {DICOM}")
            return
        temp = storage.new_temp_path(storage.default_location())
        try:
            with open(temp, "wb") as target:
                multipart.copy_part(body, part, target)
        except OSError as error:
            temp.unlink(missing_ok=True)
            self.fail(number, {}, OUT_OF_RESOURCES, f"could not be written: {error.strerror or error}")
            return
        keys = _header(temp)
        refused = self.refusal(keys)
        if refused:
            temp.unlink(missing_ok=True)
            self.fail(number, keys, NOT_AUTHORIZED if refused == NOT_YOURS else CANNOT_UNDERSTAND, refused)
            return
        result = ingest_file(temp, self.origin, adopt=True, batch=self.batch)
        if os.path.exists(temp):
            temp.unlink(missing_ok=True)
        if not result.outcome.accepted:
            code = PROCESSING_FAILURE if result.outcome == Outcome.FAILED else CANNOT_UNDERSTAND
            self.fail(number, keys, code, result.reason or result.outcome.value)
            return
        self.added.update({("study", keys.get("StudyInstanceUID", "")),
                           ("patient", keys.get("PatientID", ""), keys.get("IssuerOfPatientID", ""))})
        self.referenced.append(self._reference(keys, result.sop_instance_uid))

    def _reference(self, keys: dict, sop_uid: str) -> dict:
        from ..models import Instance

        sop_uid = sop_uid or keys.get("SOPInstanceUID", "")
        item = {"00081150": {"vr": "UI", "Value": [keys.get("SOPClassUID", "")]},
                "00081155": {"vr": "UI", "Value": [sop_uid]}}
        instance = Instance.objects.select_related("series__study").filter(sop_instance_uid=sop_uid).first()
        if instance is not None:
            item["00081150"]["Value"] = [instance.sop_class_uid]
            item[RETRIEVE_URL] = {"vr": "UR", "Value": [instance_url(
                self.request, instance.series.study.study_instance_uid, instance.series.series_instance_uid, sop_uid)]}
        return item

    def answer(self):
        self.batch.flush()  # one journal entry per study stored
        body = {}
        if self.study_uid:
            body[RETRIEVE_URL] = {"vr": "UR", "Value": [
                absolute_url(self.request, f"/dicomweb/studies/{self.study_uid}")]}
        if self.failed:
            body[FAILED_SOP] = {"vr": "SQ", "Value": self.failed}
        if self.referenced:
            body[REFERENCED_SOP] = {"vr": "SQ", "Value": self.referenced}
        status = 200 if not self.failed else 202 if self.referenced else 409
        response = json_response(body, status)
        if self.reasons:
            text = ", ".join(f'299 pacsone "{reason}"' for reason in self.reasons[:50])
            response["Warning"] = text.replace("\r", " ").replace("\n", " ").encode("ascii", "replace").decode()
        return response


def store(request, study_uid: str | None = None):
    user = request.user
    if not (has_privilege(user, Privilege.UPLOAD) or has_privilege(user, Privilege.IMPORT)):
        raise deny(request, Action.UPLOAD, "Needs the Upload or Import privilege.", target="dicomweb store")
    content = multipart.parse_media_type(request.META.get("CONTENT_TYPE", ""))
    if content.media_type != "multipart/related" or content.params.get("type", DICOM).lower() != DICOM:
        return text_response(415, 'STOW-RS takes multipart/related; type="application/dicom".')
    limit = settings.PACS_UPLOAD_MAX_MB * 1024 * 1024
    try:
        body, size = multipart.spool_body(request, limit)
    except multipart.TooLarge:
        record(Action.UPLOAD, request=request, target="dicomweb store", outcome=JournalOutcome.FAILURE,
               detail="too large")
        return text_response(413, f"The request is larger than {settings.PACS_UPLOAD_MAX_MB} MB.")
    with body:
        try:
            parts = multipart.split_parts(body, size, content.params.get("boundary", ""))
        except BadRequest as error:
            record(Action.UPLOAD, request=request, target="dicomweb store", outcome=JournalOutcome.FAILURE,
                   detail=str(error))
            return text_response(400, f"Bad multipart body: {error}.")
        if not parts:
            return text_response(400, "The multipart body holds no part.")
        stower = _Stower(request, study_uid)
        for number, part in enumerate(parts, 1):
            stower.store_part(number, body, part)
    log.info("dicomweb stow parts=%d stored=%d failed=%d user=%s", len(parts), len(stower.referenced),
             len(stower.failed), user.get_username())
    return stower.answer()
