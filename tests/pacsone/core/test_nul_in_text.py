"""A stray NUL in a DICOM text value: stored and found on every database (PostgreSQL cannot hold
U+0000 in text or jsonb, pacsone/postgresql.py), and the journal's chain still verifies."""

import pytest

from audit.journal import Action, record, verify_chain
from audit.models import Entry
from pacsone.ingest import Origin, ingest_file
from pacsone.matching import wildcard_q
from pacsone.models import Instance, Study
from tests.helpers import make_dataset, write_dataset

pytestmark = pytest.mark.django_db

INSTITUTION_TAG = "00080080"


def test_a_file_with_a_nul_inside_text_values_is_stored_and_found(tmp_path):
    ds = make_dataset(patient_id="NUL1")
    ds.PatientName = "DOE\x00^JANE"
    ds.InstitutionName = "GENERAL\x00HOSPITAL"
    ds.ImageComments = "before\x00after"
    result = ingest_file(write_dataset(ds, tmp_path / "nul.dcm"), Origin("import"))

    assert result.outcome.accepted, result.reason
    found = Study.objects.filter(wildcard_q("patient__patient_name_search", "DOE*"))
    assert [study.pk for study in found] == [result.study_pk]
    stored = Instance.objects.get(pk=result.instance_pk).header[INSTITUTION_TAG]["Value"][0]
    assert stored.replace("\x00", "") == "GENERALHOSPITAL"


def test_a_journal_entry_with_a_nul_keeps_the_chain_verifiable():
    record(Action.QUERY, ae_title="PEER\x00", detail="PatientName=DOE\x00*", target="C-FIND\x00")
    record(Action.VIEW, patient_id="P\x001")

    assert verify_chain().ok
    assert Entry.objects.filter(detail="PatientName=DOE*", ae_title="PEER", patient_id="").count() == 1
