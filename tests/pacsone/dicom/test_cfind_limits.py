"""C-FIND under the search limits: the ReDoS pattern answers within a bound, an over-long
pattern and a search past the time bound are refused with 0xC000 and an Error Comment, and the
association goes on."""

import time

import pytest
from django.db.models.expressions import RawSQL
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacsone.dicom import query
from pacsone.ingest import Origin, ingest_file
from tests.helpers import journaled, make_file
from tests.pacsone.core.test_search_limits import REDOS, slow_sql
from tests.pacsone.dicom.qr_archive import STUDY_C, identifier
from tests.pacsone.dicom.test_cfind_scp import archive_scp, associate  # noqa: F401  (fixture)

UNABLE_TO_PROCESS = 0xC000


@pytest.fixture
def long_names(archive_scp, tmp_path):  # noqa: F811
    result = ingest_file(make_file(tmp_path, "long.dcm", patient_id="LONG1", patient_name="A" * 64), Origin("import"))
    assert result.outcome.accepted, result.reason
    return archive_scp


def find(port, ds):
    """[(status, error comment, answer)] of one C-FIND, and the seconds it took."""
    assoc = associate(port)
    started = time.monotonic()
    try:
        responses = [(s.Status, s.get("ErrorComment", ""), a)
                     for s, a in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind) if s]
        seconds = time.monotonic() - started
        # The same association still answers.
        assert [s.Status for s, _ in assoc.send_c_find(identifier("STUDY", StudyInstanceUID=STUDY_C),
                                                        StudyRootQueryRetrieveInformationModelFind)][-1] == 0x0000
    finally:
        assoc.release()
    return responses, seconds


@pytest.mark.parametrize("key", ["PatientName", "PatientID", "StudyDescription", "ReferringPhysicianName"])
def test_it_answers_the_redos_pattern_within_a_bound(long_names, key):
    _ae, port = long_names
    responses, seconds = find(port, identifier("STUDY", StudyInstanceUID="", **{key: REDOS}))
    assert [status for status, _, _ in responses] == [0x0000]
    assert seconds < 2


def test_it_refuses_too_many_wildcards_with_an_error_comment(long_names):
    _ae, port = long_names
    responses, _ = find(port, identifier("STUDY", StudyInstanceUID="", PatientName="A*" * 9))
    assert responses == [(UNABLE_TO_PROCESS, "at most 8 wildcards (* or ?) per value", None)]
    assert journaled(action="query", outcome="failure", detail__contains="at most 8 wildcards").exists()


def test_it_refuses_a_search_past_the_time_bound(long_names, monkeypatch, settings):
    _ae, port = long_names
    settings.PACS_QUERY_TIMEOUT_MS = 200
    slow = RawSQL(slow_sql(), [])
    real_queryset = query.Query.queryset
    monkeypatch.setattr(query.Query, "queryset", lambda self: real_queryset(self).filter(pk__in=slow)
                        if self.matched_keys == ["PatientName"] else real_queryset(self))
    # A name the archive holds: PostgreSQL runs an IN subquery only for rows that reach it.
    responses, seconds = find(port, identifier("STUDY", StudyInstanceUID="", PatientName="AAA*"))
    assert responses == [(UNABLE_TO_PROCESS, "the search took longer than 0.2 s; narrow it", None)]
    assert seconds < 2
