"""Editing patient and study attributes: the files and the index agree afterwards."""

from io import StringIO

import pytest
from django.core.management import call_command
from pydicom import dcmread
from pydicom.uid import generate_uid

from audit.models import Entry
from pacsone import storage
from pacsone.models import Instance, Patient, Study
from routing.models import Job
from tests.helpers import make_file, pydicom_file
from tests.people import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def studies(tmp_path):
    first, second = generate_uid(), generate_uid()
    for i in range(2):
        make_file(tmp_path, f"a{i}.dcm", study_uid=first, patient_id="ED1", patient_name="WRONG^NAME", AccessionNumber="A1")
    make_file(tmp_path, "b.dcm", study_uid=second, patient_id="ED1", patient_name="WRONG^NAME", AccessionNumber="B1")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    return Study.objects.get(study_instance_uid=first), Study.objects.get(study_instance_uid=second)


def stored_header(instance):
    return dcmread(storage.absolute_path(instance.storage_location, instance.file_path), stop_before_pixels=True)


def form(study, **changes):
    data = {"patient_name": study.patient.patient_name, "birth_date": "1970-01-01", "sex": "M",
            "study_description": "", "accession_number": study.accession_number,
            "referring_physician_name": "", "reading_physician_name": "", "study_date": "2024-01-05",
            "confirmed": "yes"}  # as sent by the confirmation page's button
    data.update(changes)
    return data


def test_saving_first_says_what_will_change_and_runs_nothing(client, studies):
    first, _ = studies
    client.force_login(make_user("power", ["view", "modify"]))
    url = f"/actions/study/{first.study_instance_uid}/edit/"
    unconfirmed = form(first, patient_name="RIGHT^NAME", accession_number="A2")
    del unconfirmed["confirmed"]
    page = client.post(url, unconfirmed)
    body = page.content.decode()
    assert page.status_code == 200 and "Confirm the edit" in body and not Job.objects.exists()
    # Who, how much, and each change from what to what, as people read them.
    assert "Rewrite <strong>3 images</strong> in <strong>2 studies</strong> of <strong>WRONG, Name</strong>" in body
    assert "<td>Patient name</td><td>WRONG, Name</td><td><strong>RIGHT, Name</strong></td>" in body
    assert 'name="confirmed" value="yes"' in body and 'type="hidden" name="accession_number" value="A2"' in body
    back = client.post(url, {**unconfirmed, "confirmed": "yes", "back": "1"})  # back to the form, still nothing
    assert "Confirm the edit" not in back.content.decode() and 'value="A2"' in back.content.decode()
    assert not Job.objects.exists() and Patient.objects.get(patient_id="ED1").patient_name == "WRONG^NAME"
    assert client.post(url, {**unconfirmed, "confirmed": "yes"}).status_code == 302 and Job.objects.count() == 1


def test_patient_and_study_edits_rewrite_the_files(client, studies):
    first, second = studies
    client.force_login(make_user("power", ["view", "modify"]))
    response = client.post(f"/actions/study/{first.study_instance_uid}/edit/",
                           form(first, patient_name="RIGHT^NAME", accession_number="A2", reading_physician_name="Who^Dr"))
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.state == Job.State.DONE and job.failed == 0, job.message
    assert job.total == 3  # the patient's name changes in both studies
    patient = Patient.objects.get(patient_id="ED1")
    assert patient.patient_name == "RIGHT^NAME" and patient.patient_name_search == "RIGHT^NAME"
    first.refresh_from_db()
    assert first.accession_number == "A2" and first.reading_physician_name == "Who^Dr"
    for instance in Instance.objects.select_related("series__study", "storage_location"):
        header = stored_header(instance)
        assert str(header.PatientName) == "RIGHT^NAME"
        assert header.AccessionNumber == ("A2" if instance.series.study_id == first.pk else "B1")
        assert instance.header["00100010"]["Value"][0]["Alphabetic"] == "RIGHT^NAME"
    assert Instance.objects.count() == 3
    assert Entry.objects.filter(action="modify", username="power").exists()
    assert not Entry.objects.filter(action="import", target__contains="edit").exists()
    call_command("verifystorage", stdout=StringIO())


def test_a_compressed_file_keeps_its_transfer_syntax(client, tmp_path):
    (tmp_path / "rle.dcm").write_bytes(pydicom_file("MR_small_RLE.dcm").read_bytes())
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    study = Study.objects.get()
    client.force_login(make_user("power", ["view", "modify"]))
    client.post(f"/actions/study/{study.study_instance_uid}/edit/", form(study, study_description="EDITED"))
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.5"
    header = stored_header(instance)
    assert header.StudyDescription == "EDITED" and header.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"


@pytest.mark.parametrize("privileges,expected", [(["view"], 403), (["modify"], 404)])
def test_edit_needs_modify_and_sight(client, studies, privileges, expected):
    client.force_login(make_user("u", privileges))
    assert client.get(f"/actions/study/{studies[0].study_instance_uid}/edit/").status_code == expected


def test_bad_values_are_refused_and_nothing_changes(client, studies):
    first, _ = studies
    client.force_login(make_user("power", ["view", "modify"]))
    response = client.post(f"/actions/study/{first.study_instance_uid}/edit/",
                           form(first, patient_name="EVIL\\NAME", birth_date="31/12/1970"))
    assert response.status_code == 200 and b"not allowed" in response.content and b"valid date" in response.content
    assert not Job.objects.exists()
    assert Patient.objects.get(patient_id="ED1").patient_name == "WRONG^NAME"
