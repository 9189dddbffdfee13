"""Every page root uses, at a phone (390 px), a tablet (768 px) and a desktop (1440 px) width
(issue 17): the page is never wider than the screen (wide tables scroll inside their card),
long values wrap or are cut with a title. Screenshots of each go to test-artifacts/."""

from io import StringIO

import pytest
from django.core.management import call_command

from pacsone.models import Printer, RemoteAE, Study
from tests.browser_support import browser_page, log_in, screenshot
from tests.helpers import make_file
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

WIDTHS = (390, 768, 1440)
LONG = "x" * 150


@pytest.fixture
def archive(tmp_path):
    make_file(tmp_path, "a.dcm", study_uid="1.2.826.17.5", patient_name="ROE^JANE^Q^DR^MD", patient_id="P" * 60,
              StudyDescription="CT " + "VERY LONG DESCRIPTION " * 5, InstitutionName="ST ELSEWHERE " * 5)
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    make_user(LONG, first_name="Averyveryverylongfirstnamewithoutanyspaces", last_name="B" * 60)
    RemoteAE.objects.create(ae_title="ORTHANC_LONG_AE", host="a-very-long-host-name.radiology.example.org", port=4242,
                            description="Orthanc in the basement " * 4)
    Printer.objects.create(ae_title="DRYVIEW_LONG_AE", host="a-very-long-printer-name.radiology.example.org",
                           port=5040, description="Film printer on the second floor " * 3, color=True,
                           medium_type="MAMMO CLEAR FILM", film_destination="PROCESSOR", magnification_type="BILINEAR")
    return Study.objects.get()


def test_every_page_fits_every_width(live_server, archive):
    from audit.journal import Action, record
    from hl7.models import PatientMerge
    from routing.models import Job

    root = make_user("root")
    study = archive
    series = study.series.get()
    # A job and journal entries about the study: their pages name the patient and the study.
    job = Job.objects.create(kind=Job.Kind.EXPORT, title="Export of 1 study to DICOM media (ZIP)", owner=root,
                             state=Job.State.DONE, done=1, total=1)
    job.studies.add(study)
    record(Action.VIEW, username="root", target="study", patient_id=study.patient.patient_id,
           study_uid=study.study_instance_uid)
    merge = PatientMerge.objects.create(source_patient_id="OLD" + "9" * 40, target_patient_id=study.patient.patient_id,
                                        study_pks=[study.pk])
    pages = {
        "list": "/", "study": f"/studies/{study.study_instance_uid}/", "patient": f"/patients/{study.patient_id}/",
        "series": f"/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/",
        "notes": f"/notes/{study.study_instance_uid}/", "upload": "/upload/", "import": "/import/",
        "monitor": "/monitor/", "aes": "/aes/", "remote-search": "/remote/", "journal": "/journal/",
        "users": "/accounts/users/", "groups": "/accounts/groups/", "tokens": "/accounts/tokens/", "trash": "/trash/",
        "jobs": "/jobs/", "job": f"/jobs/{job.pk}/", "edit": f"/actions/study/{study.study_instance_uid}/edit/",
        "delete": f"/actions/study/{study.study_instance_uid}/delete/", "merges": "/hl7/merges/",
        "merge-undo": f"/hl7/merges/{merge.pk}/undo/", "viewer": f"/studies/{study.study_instance_uid}/series/"
        f"{series.series_instance_uid}/viewer", "storage": "/storage/", "routing": "/routing/", "not-found": "/no/such/page/",
        "printers": "/printers/", "printer": "/printers/add/", "print": "/print/",
    }
    too_wide = []
    with browser_page(width=1440) as page:
        log_in(page, live_server.url, "root", PASSWORD)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for name, path in pages.items():
                page.goto(live_server.url + path)
                page.wait_for_load_state("networkidle")
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > width:
                    too_wide.append(f"{name} at {width}: {scroll} px")
                screenshot(page, f"page-{name}-{width}")
    assert not too_wide, "\n".join(too_wide)
