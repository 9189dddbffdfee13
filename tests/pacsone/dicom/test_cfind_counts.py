"""C-FIND counts right after a store: every instance acknowledged with Success before the query
is counted (NumberOf*RelatedInstances/Series, ModalitiesInStudy), over real associations, while
the storing association is still open (its post-ingest work has not even been queued)."""

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from tests.helpers import make_dataset
from tests.people import make_user
from tests.pacsone.dicom.qr_archive import identifier
from tests.pacsone.dicom.test_cfind_scp import associate, findscu

CT_COUNT, MR_COUNT = 60, 20


@pytest.fixture(autouse=True)
def open_queries(settings):
    """About counts, not about who may query (test_dicom_access.py)."""
    settings.PACS_DICOM_QUERY_POLICY = "open"


def store_study(port: int, study_uid: str):
    """An open association that has stored CT_COUNT CT and MR_COUNT MR images with Success."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    for series_uid, modality, sop_class, count in ((study_uid + ".1", "CT", CTImageStorage, CT_COUNT),
                                                   (study_uid + ".2", "MR", MRImageStorage, MR_COUNT)):
        for number in range(1, count + 1):
            ds = make_dataset(study_uid=study_uid, series_uid=series_uid, patient_id="CNT1", rows=8,
                              Modality=modality, InstanceNumber=number, SOPClassUID=sop_class)
            ds.file_meta.MediaStorageSOPClassUID = sop_class
            assert assoc.send_c_store(ds).Status == 0x0000
    return assoc


def answers(port: int, ds: Dataset, model=StudyRootQueryRetrieveInformationModelFind) -> list[Dataset]:
    assoc = associate(port)
    try:
        found = [a for s, a in assoc.send_c_find(ds, model) if s and s.Status == 0xFF00]
    finally:
        assoc.release()
    return found


def test_counts_are_exact_right_after_the_stores(scp):
    _ae, port = scp
    study_uid = generate_uid()[:60]
    storing = store_study(port, study_uid)
    try:
        (study,) = answers(port, identifier("STUDY", StudyInstanceUID=study_uid, NumberOfStudyRelatedInstances="",
                                            NumberOfStudyRelatedSeries="", ModalitiesInStudy=""))
        series = answers(port, identifier("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="",
                                          NumberOfSeriesRelatedInstances=""))
        (patient,) = answers(port, identifier("PATIENT", PatientID="CNT1", NumberOfPatientRelatedStudies="",
                                              NumberOfPatientRelatedSeries="", NumberOfPatientRelatedInstances=""),
                             PatientRootQueryRetrieveInformationModelFind)
    finally:
        storing.release()
    assert study.NumberOfStudyRelatedInstances == CT_COUNT + MR_COUNT
    assert study.NumberOfStudyRelatedSeries == 2
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert {s.SeriesInstanceUID: s.NumberOfSeriesRelatedInstances for s in series} == {
        study_uid + ".1": CT_COUNT, study_uid + ".2": MR_COUNT}
    assert (patient.NumberOfPatientRelatedStudies, patient.NumberOfPatientRelatedSeries,
            patient.NumberOfPatientRelatedInstances) == (1, 2, CT_COUNT + MR_COUNT)


@pytest.mark.peers
def test_findscu_counts_every_instance_stored_before_it(scp, tmp_path):
    _ae, port = scp
    study_uid = generate_uid()[:60]
    storing = store_study(port, study_uid)
    try:
        (answer,) = findscu(port, "-S", "STUDY", [f"StudyInstanceUID={study_uid}", "NumberOfStudyRelatedInstances",
                                                  "NumberOfStudyRelatedSeries", "ModalitiesInStudy"], tmp_path / "out")
    finally:
        storing.release()
    assert answer.NumberOfStudyRelatedInstances == CT_COUNT + MR_COUNT
    assert answer.NumberOfStudyRelatedSeries == 2 and list(answer.ModalitiesInStudy) == ["CT", "MR"]


def test_the_study_list_and_the_api_count_every_instance_stored_before_them(scp, client):
    _ae, port = scp
    study_uid = generate_uid()[:60]
    client.force_login(make_user("viewer", ["view"]))
    storing = store_study(port, study_uid)
    try:
        page = client.get("/", {"patient_id": "CNT1"})
        (listed,) = client.get("/api/studies/", {"study_instance_uid": study_uid}).json()["results"]
    finally:
        storing.release()
    (row,) = page.context["page"]
    assert (row.number_of_instances, row.number_of_series, row.modalities_in_study) == (CT_COUNT + MR_COUNT, 2, "CT\\MR")
    assert (listed["number_of_instances"], listed["number_of_series"], listed["modalities_in_study"]) == (
        CT_COUNT + MR_COUNT, 2, "CT\\MR")
