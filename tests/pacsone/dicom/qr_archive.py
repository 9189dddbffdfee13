"""The small archive the Query/Retrieve tests search and retrieve from."""

from pydicom.dataset import Dataset

from pacsone.ingest import Origin, ingest_file
from tests.helpers import make_file

STUDY_A, STUDY_B, STUDY_C = "1.2.826.0.1.3680043.10.1", "1.2.826.0.1.3680043.10.2", "1.2.826.0.1.3680043.10.3"


def make_archive(tmp_path) -> None:
    """Three patients, three studies; study A has a CT series of 2 images and an MR series."""
    files = [
        dict(study_uid=STUDY_A, series_uid=STUDY_A + ".1", sop_uid=STUDY_A + ".1.1", patient_id="P1",
             patient_name="Doe^John", StudyDate="20240105", StudyTime="101500", AccessionNumber="ACC1",
             Modality="CT", SeriesNumber=1, InstanceNumber=1, StudyDescription="CHEST",
             ReferringPhysicianName="Smith^Jane", InstitutionName="General Hospital"),
        dict(study_uid=STUDY_A, series_uid=STUDY_A + ".1", sop_uid=STUDY_A + ".1.2", patient_id="P1",
             patient_name="Doe^John", StudyDate="20240105", StudyTime="101500", Modality="CT",
             SeriesNumber=1, InstanceNumber=2),
        dict(study_uid=STUDY_A, series_uid=STUDY_A + ".2", sop_uid=STUDY_A + ".2.1", patient_id="P1",
             patient_name="Doe^John", StudyDate="20240105", StudyTime="101500", Modality="MR",
             SeriesNumber=2, InstanceNumber=1),
        dict(study_uid=STUDY_B, series_uid=STUDY_B + ".1", sop_uid=STUDY_B + ".1.1", patient_id="P2",
             patient_name="Doering^Anna", StudyDate="20240106", StudyTime="230000", AccessionNumber="ACC2",
             Modality="CT", SeriesNumber=1),
        dict(study_uid=STUDY_C, series_uid=STUDY_C + ".1", sop_uid=STUDY_C + ".1.1", patient_id="X3",
             patient_name="Roe^Richard", StudyDate="20240110", StudyTime="080000", AccessionNumber="B77",
             Modality="US", SeriesNumber=1),
    ]
    for i, kwargs in enumerate(files):
        result = ingest_file(make_file(tmp_path, f"{i}.dcm", **kwargs), Origin("import"))
        assert result.outcome.accepted, result.reason


def identifier(level: str, **keys) -> Dataset:
    """A C-FIND/C-MOVE/C-GET identifier: the level and keyword=value keys."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds
