"""What each inbound message type does. Each handler takes the parsed message and its sender,
applies it (through the do_* functions, which journal) and returns a line saying what it did;
it raises NotApplied with the reason when it cannot (answered AE).

- ADT^A01/A04/A08/A31: patient demographics (PID-5 name, PID-7 birth date, PID-8 sex).
- ADT^A40: merge (PID-3 survives, MRG-1 is merged into it); ADT^A37: undo the last merge of the pair.
- ADT^A47: change of identifier (MRG-1 -> PID-3).
- ORM^O01, OMI^O23: create, update, cancel a scheduled procedure step (ORC-1 order control).
- ORU^R01: the report text (OBX-5) attached to the study as a note.
"""

from django.db import transaction
from pydicom.uid import generate_uid

from audit.journal import Action, record
from pacsone.humanize import count
from pacsone.models import Note, Patient, Study

from .codec import Parsed
from .models import PatientMerge, ScheduledStep
from .patients import NotApplied, do_change_identifier, do_merge, do_unmerge, do_update_demographics, find_patient
from .values import Sender, dicom_date, dicom_sex, dicom_time, person_name, python_date

NEW_ORDER = {"NW", "SN"}
UPDATE_ORDER = {"XO", "XX", "SC", "RO"}
CANCEL_ORDER = {"CA", "OC", "CR", "OD"}
DISCONTINUE_ORDER = {"DC", "DR"}
ORDER_STATUS = {"IP": ScheduledStep.State.IN_PROGRESS, "CM": ScheduledStep.State.COMPLETED,
                "CA": ScheduledStep.State.CANCELLED, "DC": ScheduledStep.State.DISCONTINUED,
                "SC": ScheduledStep.State.SCHEDULED}
REPORT_VALUE_TYPES = {"TX", "FT", "ST", "CE", "CWE", ""}


def _what(parsed: Parsed) -> str:
    return f"HL7 {parsed.message_type}^{parsed.trigger} {parsed.control_id}"


def _patient_ids(parsed: Parsed, segment) -> list[tuple[str, str]]:
    """(ID, issuer) of each repetition of PID-3 (or MRG-1)."""
    number = 3 if segment.name == "PID" else 1
    return [(parsed.value(segment, number, 1, r), parsed.value(segment, number, 4, r))
            for r in range(parsed.repetitions(segment, number)) if parsed.value(segment, number, 1, r)]


def _find(parsed: Parsed, segment) -> Patient | None:
    for patient_id, issuer in _patient_ids(parsed, segment):
        patient = find_patient(patient_id, issuer)
        if patient is not None:
            return patient
    return None


def _demographics(parsed: Parsed, pid) -> tuple[str | None, object, str | None]:
    """(name, birth date, sex) from a PID; None where the field is empty (kept as is).
    `""` (an HL7 delete) clears a value: "" for each of them."""
    def given(number):
        return pid.fields[number] if number < len(pid.fields) and pid.fields[number] != "" else None

    name = given(5)
    name = "" if name == '""' else (person_name(parsed.components(pid, 5)) if name is not None else None)
    birth = given(7)
    birth = None if birth is None else ("" if birth == '""' else python_date(parsed.value(pid, 7)))
    sex = given(8)
    sex = "" if sex == '""' else (dicom_sex(parsed.value(pid, 8)) if sex is not None else None)
    return name, birth, sex


def _pid(parsed: Parsed):
    pid = parsed.first("PID")
    if pid is None or not _patient_ids(parsed, pid):
        raise NotApplied("the message has no PID segment with a patient ID (PID-3)")
    return pid


def adt_update(parsed: Parsed, sender: Sender) -> str:
    pid = _pid(parsed)
    patient = _find(parsed, pid)
    if patient is None:
        ids = ", ".join(i for i, _ in _patient_ids(parsed, pid))
        return f"patient {ids} is not in the archive: nothing to update"
    name, birth, sex = _demographics(parsed, pid)
    return do_update_demographics(patient, name, birth, sex, sender=sender, what=_what(parsed))


def _pairs(parsed: Parsed) -> list[tuple]:
    """(PID, MRG) pairs of a merge or identifier change."""
    pairs, pid = [], None
    for segment in parsed.segments:
        if segment.name == "PID":
            pid = segment
        elif segment.name == "MRG":
            if pid is None:
                raise NotApplied("an MRG segment without the PID it belongs to")
            pairs.append((pid, segment))
    if not pairs:
        raise NotApplied("the message has no PID/MRG pair")
    return pairs


def adt_merge(parsed: Parsed, sender: Sender) -> str:
    done = []
    with transaction.atomic():  # several pairs: all or none
        for pid, mrg in _pairs(parsed):
            source = _find(parsed, mrg)
            if source is None:
                raise NotApplied(f"no patient with the prior ID {parsed.value(mrg, 1)} (MRG-1)")
            target = _find(parsed, pid)
            if target is None:
                target_id, issuer = _patient_ids(parsed, pid)[0] if _patient_ids(parsed, pid) else ("", "")
                if not target_id:
                    raise NotApplied("the surviving patient has no ID (PID-3)")
                name, birth, sex = _demographics(parsed, pid)
                target = Patient.objects.create(patient_id=target_id, issuer_of_patient_id=issuer,
                                                patient_name=name or source.patient_name,
                                                patient_name_search=(name or source.patient_name).upper(),
                                                birth_date=birth or source.birth_date, sex=sex or source.sex,
                                                public=source.public)
            merge = do_merge(source, target, sender=sender, what=_what(parsed))
            done.append(f"{merge.source_patient_id} -> {merge.target_patient_id} ({count(len(merge.study_pks), 'study', 'studies')})")
    return "merged " + "; ".join(done)


def adt_unmerge(parsed: Parsed, sender: Sender) -> str:
    """ADT^A37 (unlink) used as the undo of a merge: PID-3 the surviving ID, MRG-1 the prior one."""
    done = []
    with transaction.atomic():
        for pid, mrg in _pairs(parsed):
            prior = parsed.value(mrg, 1)
            surviving = [i for i, _ in _patient_ids(parsed, pid)]
            merge = PatientMerge.objects.filter(source_patient_id=prior, target_patient_id__in=surviving,
                                                undone_at__isnull=True).first()
            if merge is None:
                raise NotApplied(f"no merge of {prior} into {', '.join(surviving)} to undo")
            moved = do_unmerge(merge, sender=sender)
            done.append(f"{prior} ({count(moved, 'study', 'studies')} back)")
    return "unmerged " + "; ".join(done)


def adt_change_identifier(parsed: Parsed, sender: Sender) -> str:
    done = []
    with transaction.atomic():
        for pid, mrg in _pairs(parsed):
            patient = _find(parsed, mrg)
            if patient is None:
                raise NotApplied(f"no patient with the prior ID {parsed.value(mrg, 1)} (MRG-1)")
            ids = _patient_ids(parsed, pid)
            if not ids:
                raise NotApplied("the new identifier (PID-3) is empty")
            new_id, issuer = ids[0]
            done.append(do_change_identifier(patient, new_id, issuer or None, sender=sender, what=_what(parsed)))
    return "; ".join(done)


# --- Orders -> worklist ----------------------------------------------------------------------------


def _first(*values: str) -> str:
    return next((value for value in values if value), "")


def _step_values(parsed: Parsed) -> dict:
    """The worklist entry an order describes (IHE SWF: ORC/OBR/ZDS for ORM, ORC/TQ1/OBR/IPC for OMI)."""
    pid, orc, obr = parsed.first("PID"), parsed.first("ORC"), parsed.first("OBR")
    ipc, tq1, zds, pv1 = parsed.first("IPC"), parsed.first("TQ1"), parsed.first("ZDS"), parsed.first("PV1")
    value = parsed.value
    start = _first(value(tq1, 7), value(obr, 27, 4), value(orc, 7, 4), value(obr, 36), value(obr, 7))
    ids = _patient_ids(parsed, pid) if pid is not None else []
    patient_id, issuer = ids[0] if ids else ("", "")
    name, birth, sex = _demographics(parsed, pid) if pid is not None else (None, None, None)
    return {
        "placer_order_number": _first(value(orc, 2), value(obr, 2)),
        "filler_order_number": _first(value(orc, 3), value(obr, 3)),
        "accession_number": _first(value(ipc, 1), value(obr, 18), value(orc, 3), value(obr, 3))[:16],
        "requested_procedure_id": _first(value(ipc, 2), value(obr, 19))[:16],
        "requested_procedure_description": _first(value(obr, 4, 2), value(obr, 4, 1))[:64],
        "study_instance_uid": _first(value(ipc, 3), value(zds, 1))[:64],
        "referring_physician_name": person_name(parsed.components(pv1, 8)) if value(pv1, 8) else
        person_name(parsed.components(obr, 16)) if value(obr, 16) else "",
        "patient_id": patient_id,
        "issuer_of_patient_id": issuer,
        "patient_name": name or "",
        "birth_date": birth.strftime("%Y%m%d") if birth else "",
        "sex": sex or "",
        "step_id": _first(value(ipc, 4), value(obr, 20))[:16],
        "modality": _first(value(ipc, 5), value(obr, 24))[:16].upper(),
        "station_name": value(ipc, 7)[:16],
        "station_ae_title": _first(value(ipc, 9), value(obr, 21))[:16],
        "start_date": dicom_date(start),
        "start_time": dicom_time(start),
        "description": _first(value(obr, 4, 2), value(obr, 4, 1), value(ipc, 6, 2))[:64],
        "performing_physician_name": person_name(parsed.components(obr, 34)) if value(obr, 34) else "",
    }


def _existing_step(values: dict) -> ScheduledStep | None:
    steps = ScheduledStep.objects.all()
    if values["placer_order_number"]:
        steps = steps.filter(placer_order_number=values["placer_order_number"])
    elif values["accession_number"]:
        steps = steps.filter(accession_number=values["accession_number"])
    else:
        return None
    if values["step_id"]:
        steps = steps.filter(step_id=values["step_id"])
    return steps.order_by("-id").first()


def do_order(parsed: Parsed, sender: Sender) -> str:
    orc = parsed.first("ORC")
    if orc is None:
        raise NotApplied("the order has no ORC segment")
    control = parsed.value(orc, 1).upper()
    values = _step_values(parsed)
    if not values["placer_order_number"] and not values["accession_number"]:
        raise NotApplied("the order has neither a placer order number (ORC-2) nor an accession number")
    with transaction.atomic():
        step = _existing_step(values)
        if control in NEW_ORDER or (control in UPDATE_ORDER and step is not None):
            if control in NEW_ORDER and not values["patient_id"]:
                raise NotApplied("a new order needs the patient ID (PID-3)")
            if step is None:
                values["study_instance_uid"] = values["study_instance_uid"] or generate_uid()
                values["step_id"] = values["step_id"] or values["accession_number"][:16]
                values["requested_procedure_id"] = values["requested_procedure_id"] or values["accession_number"][:16]
                step = ScheduledStep(**values)
                done = "scheduled"
            else:
                for field, value in values.items():
                    if value:
                        setattr(step, field, value)
                done = "updated"
            step.patient_name_search = step.patient_name.upper()
            if control == "SC" and parsed.value(orc, 5).upper() in ORDER_STATUS:
                step.state = ORDER_STATUS[parsed.value(orc, 5).upper()]
            step.save()
        elif control in CANCEL_ORDER | DISCONTINUE_ORDER:
            if step is None:
                raise NotApplied(f"no scheduled step for order {values['placer_order_number'] or values['accession_number']}")
            step.state = ScheduledStep.State.DISCONTINUED if control in DISCONTINUE_ORDER else ScheduledStep.State.CANCELLED
            step.save(update_fields=["state", "updated_at"])
            done = step.state.lower()
        elif control in UPDATE_ORDER:
            raise NotApplied(f"no scheduled step for order {values['placer_order_number'] or values['accession_number']}")
        else:
            raise NotApplied(f"unsupported order control (ORC-1): {control or 'empty'}")
        record(Action.MODIFY, username=sender.username, address=sender.address, patient_id=step.patient_id,
               study_uid=step.study_instance_uid, target=_what(parsed)[:255],
               detail=f"worklist step {step.pk} {done}: accession {step.accession_number}, modality {step.modality}, "
                      f"station {step.station_ae_title}, {step.start_date} {step.start_time}, state {step.state}")
    return f"worklist step {step.pk} {done} ({step.state})"


# --- Reports ------------------------------------------------------------------------------------------


def _report_study(parsed: Parsed) -> Study | None:
    obr, orc, zds, ipc = parsed.first("OBR"), parsed.first("ORC"), parsed.first("ZDS"), parsed.first("IPC")
    study_uid = _first(parsed.value(zds, 1), parsed.value(ipc, 3))
    if study_uid:
        study = Study.objects.filter(study_instance_uid=study_uid).first()
        if study is not None:
            return study
    for accession in (parsed.value(ipc, 1), parsed.value(obr, 18), parsed.value(orc, 3), parsed.value(obr, 3)):
        if accession:
            study = Study.objects.filter(accession_number=accession).order_by("-pk").first()
            if study is not None:
                return study
    return None


def do_report(parsed: Parsed, sender: Sender) -> str:
    study = _report_study(parsed)
    if study is None:
        raise NotApplied("no study with this report's accession number (OBR-18/ORC-3) or Study Instance UID")
    lines = []
    for obx in parsed.all("OBX"):
        if parsed.value(obx, 2).upper() not in REPORT_VALUE_TYPES:
            continue
        for r in range(max(parsed.repetitions(obx, 5), 1)):
            components = parsed.components(obx, 5, r)
            lines.append(components[1] if parsed.value(obx, 2).upper() in ("CE", "CWE") and len(components) > 1
                         else "^".join(components).rstrip("^"))
    text = "\n".join(lines).strip()
    if not text:
        raise NotApplied("the report has no text (OBX-5)")
    status = parsed.value(parsed.first("OBR"), 25)
    with transaction.atomic():
        note = Note.objects.create(study=study, author=None, text=text[:20000],
                                   author_name=f"Report{f' ({status})' if status else ''} from {sender.application or 'HL7'}"[:300])
        record(Action.MODIFY, username=sender.username, address=sender.address,
               patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
               target=f"note {note.pk}", detail=f"{_what(parsed)}: report attached ({len(text)} characters)")
    return f"report attached to study {study.pk} as note {note.pk}"


HANDLERS = {
    ("ADT", "A01"): adt_update,
    ("ADT", "A04"): adt_update,
    ("ADT", "A08"): adt_update,
    ("ADT", "A31"): adt_update,
    ("ADT", "A40"): adt_merge,
    ("ADT", "A37"): adt_unmerge,
    ("ADT", "A47"): adt_change_identifier,
    ("ORM", "O01"): do_order,
    ("OMI", "O23"): do_order,
    ("ORU", "R01"): do_report,
}
