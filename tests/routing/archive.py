"""Studies for the routing tests, stored through the one ingest path with one post-ingest batch
(as one association does): routing is queued when the batch is flushed."""

from pacsone.ingest import Origin, PostIngestBatch, ingest_file
from pacsone.models import Study
from tests.helpers import make_dataset, write_dataset


def store_study(folder, study_uid: str, count: int, origin: Origin | None = None, **attributes) -> Study | None:
    """The stored study (None when routing, run at once in tests, already purged it)."""
    origin = origin or Origin("import")
    batch = PostIngestBatch()
    series_uid = study_uid + ".1"
    for number in range(1, count + 1):
        ds = make_dataset(study_uid=study_uid, series_uid=series_uid, sop_uid=f"{series_uid}.{number}",
                          InstanceNumber=number, rows=16, **attributes)
        result = ingest_file(write_dataset(ds, folder / study_uid / f"{number}.dcm"), origin, batch=batch)
        assert result.outcome.accepted, result.reason
    batch.flush()
    return Study.objects.filter(study_instance_uid=study_uid).first()


def sop_uids(study_uid: str, count: int) -> set[str]:
    return {f"{study_uid}.1.{number}" for number in range(1, count + 1)}
