"""The study and series counts change in the ingest transaction itself (pacsone/study_counts.py):
exact right after each instance, for new series, duplicates and replacements."""

import pytest

from pacsone.ingest import Origin, Outcome, PostIngestBatch, ingest_file
from pacsone.models import Instance, Series, Study
from tests.helpers import make_file

ORIGIN = Origin("import", ae_title="TESTER")
STUDY = "1.2.826.0.1.3680043.10.77"
pytestmark = pytest.mark.django_db


def counts(study_uid: str = STUDY) -> tuple:
    study = Study.objects.get(study_instance_uid=study_uid)
    per_series = dict(Series.objects.filter(study=study).values_list("series_instance_uid", "number_of_instances"))
    return study.number_of_instances, study.number_of_series, study.modalities_in_study, per_series


def test_it_counts_each_instance_before_the_post_ingest_work(tmp_path):
    batch = PostIngestBatch()  # never flushed: no follow-up task runs
    for i in range(3):
        ingest_file(make_file(tmp_path, f"ct{i}.dcm", study_uid=STUDY, series_uid=STUDY + ".1"), ORIGIN, batch=batch)
        assert counts()[0] == i + 1
    ingest_file(make_file(tmp_path, "mr.dcm", study_uid=STUDY, series_uid=STUDY + ".2", Modality="MR"), ORIGIN,
                batch=batch)

    assert counts() == (4, 2, "CT\\MR", {STUDY + ".1": 3, STUDY + ".2": 1})
    study = Study.objects.get(study_instance_uid=STUDY)
    assert study.size_bytes == sum(Instance.objects.values_list("file_size", flat=True))


def test_an_ignored_duplicate_is_not_counted_twice(tmp_path, settings):
    settings.PACS_DUPLICATE_POLICY = "ignore"
    source = make_file(tmp_path, study_uid=STUDY, series_uid=STUDY + ".1")
    ingest_file(source, ORIGIN)

    assert ingest_file(source, ORIGIN).outcome == Outcome.IGNORED
    assert counts() == (1, 1, "CT", {STUDY + ".1": 1})


def test_a_replacement_that_moves_to_another_series_moves_its_count(tmp_path, settings):
    settings.PACS_DUPLICATE_POLICY = "replace"
    sop_uid = STUDY + ".9.9"
    ingest_file(make_file(tmp_path, "a.dcm", study_uid=STUDY, series_uid=STUDY + ".1", sop_uid=sop_uid), ORIGIN)
    ingest_file(make_file(tmp_path, "b.dcm", study_uid=STUDY, series_uid=STUDY + ".1"), ORIGIN)
    moved = make_file(tmp_path, "c.dcm", study_uid=STUDY, series_uid=STUDY + ".2", sop_uid=sop_uid, Modality="MR",
                      SeriesDescription="a longer description makes a bigger file")

    assert ingest_file(moved, ORIGIN).outcome == Outcome.REPLACED

    assert counts() == (2, 2, "CT\\MR", {STUDY + ".1": 1, STUDY + ".2": 1})
    study = Study.objects.get(study_instance_uid=STUDY)
    assert study.size_bytes == sum(Instance.objects.values_list("file_size", flat=True))
