"""The summary columns of studies and series, kept exact inside the ingest transaction.

Study.number_of_instances, size_bytes, number_of_series, modalities_in_study and
Series.number_of_instances answer C-FIND (NumberOfStudyRelatedInstances, ...), the study list
and the REST API. They change in the same transaction as the Instance row they count, so a
query that follows an acknowledged store counts it (PS3.4 C.6: the counts are those of the
archive at the time of the query).

The measured choice (docs/benchmarks.md, "Exact counts"): two UPDATEs by primary key per
instance cost about as much as computing the counts at query time for one 1,000-instance
study, and the columns serve every reader (pages, API, sync) without a join. The UPDATEs are
plain SQL, prepared once: the ORM's `update(F(...) + 1)` costs several times more Python.
A new series, which is rare, adds itself to the study's series count and modalities.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import F

from .models import Series, Study


def _quoted(connection) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(Study._meta.db_table), quote(Series._meta.db_table)


def count_instance(study_pk: int, series_pk: int, delta: int, size: int) -> None:
    """An instance of `size` bytes entered (delta=1) or left (delta=-1) a series. Must run in the
    transaction that inserts, moves or deletes its row."""
    connection = connections[DEFAULT_DB_ALIAS]  # once, not through the proxy per attribute
    study_table, series_table = _quoted(connection)
    with connection.cursor() as cursor:
        # The study's row first, then the series': the order every ingest transaction locks them
        # in (ingest._ParentCache.resolve), so that two of them never wait for each other.
        cursor.execute(
            f"UPDATE {study_table} SET number_of_instances = number_of_instances + %s, "
            f"size_bytes = size_bytes + %s WHERE id = %s",
            [delta, delta * size, study_pk],
        )
        cursor.execute(
            f"UPDATE {series_table} SET number_of_instances = number_of_instances + %s WHERE id = %s",
            [delta, series_pk],
        )


def series_added(study_pk: int, modality: str) -> None:
    """A series was created in the study, in this transaction. The study row is read with a
    lock first: two associations adding series to one study at once wait for each other and
    each counts from what the other committed (a plain read could see a stale snapshot)."""
    study = Study.objects.select_for_update().only("modalities_in_study").get(pk=study_pk)
    modalities = set(filter(None, study.modalities_in_study.split("\\"))) | ({modality} - {""})
    Study.objects.filter(pk=study_pk).update(
        number_of_series=F("number_of_series") + 1, modalities_in_study="\\".join(sorted(modalities))[:64],
    )
