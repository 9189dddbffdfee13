"""Which patients' instances are sent with other values than stored, and which values: those
whose demographics or ID an ADT message changed (marked by hl7/patients.py). The C-MOVE/C-GET
rows get a `coerce` dict (DICOM keyword -> value) that pacsone/dicom/net/coercion.py applies."""

from pacsone.models import Patient

from .models import CoercedPatient


def mark(*patients: Patient) -> None:
    """These patients' stored files no longer match the index."""
    for patient in patients:
        CoercedPatient.objects.update_or_create(patient=patient)


def values_of(patient: Patient) -> dict[str, str]:
    return {
        "PatientID": patient.patient_id,
        "IssuerOfPatientID": patient.issuer_of_patient_id,
        "PatientName": patient.patient_name,
        "PatientBirthDate": patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
        "PatientSex": patient.sex,
    }


def add_coercions(rows: list[dict]) -> None:
    """Give each retrieve row of a marked patient the values to send (one query for all rows)."""
    patient_pks = {row["series__study__patient_id"] for row in rows}
    if not patient_pks:
        return
    marked = Patient.objects.filter(pk__in=patient_pks, hl7_coercion__isnull=False)
    values = {patient.pk: values_of(patient) for patient in marked}
    if not values:
        return
    for row in rows:
        row["coerce"] = values.get(row["series__study__patient_id"])
