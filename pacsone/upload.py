"""A browser upload as a job: every file through the one ingest path (pacsone.importer), with a
result per file under the name the user knows it by (the path inside the folder they dropped),
never a server path. The results are kept as JSON (RESULTS_KEPT_DAYS) for the upload page to
show (pacsone/web/transfer.py), each stored file with its study (the page links only the studies
its reader may still see)."""

import json
import re
import shutil
import time
from pathlib import Path

from django.conf import settings

from .importer import count_candidates, import_paths, summary_message
from .ingest import Origin

MAX_RESULTS_KEPT = 5000
# Names shown back to the user: their own, without control characters, bounded.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def shown_name(name: str) -> str:
    return UNPRINTABLE.sub("?", name or "").strip()[:255] or "(no name)"


# Results older than this are removed when a new upload writes its own.
RESULTS_KEPT_DAYS = 7


def results_path(job_pk: int) -> Path:
    return settings.SHARED_DIR / "upload-results" / f"job-{int(job_pk)}.json"


def _prune_results(folder: Path) -> None:
    cutoff = time.time() - RESULTS_KEPT_DAYS * 86400
    for old in folder.glob("job-*.json"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def _without(text: str, folder: Path) -> str:
    """A reason without the staging folder's path (a parser's message may name the file)."""
    return text.replace(str(folder) + "/", "").replace(str(folder), "")


def upload_job(progress, staging: str, username: str, display_names: dict[str, str]) -> str:
    """The job: import the staged files, keep one result per file, remove the staging folder.
    Returns the job's message (a summary in words)."""
    from routing.models import Job

    from .models import Study

    folder = Path(staging)
    results: list[dict] = []
    study_pks: set[int] = set()

    def on_file(label: str, result) -> None:
        if result.study_pk:
            study_pks.add(result.study_pk)
        if len(results) < MAX_RESULTS_KEPT:
            results.append({"name": _without(label, folder), "outcome": result.outcome.value,
                            "accepted": result.outcome.accepted, "reason": _without(result.reason or "", folder),
                            "study_pk": result.study_pk})

    try:
        files = [path for path in sorted(folder.iterdir()) if path.is_file()]
        progress.start(count_candidates(files))
        summary = import_paths(files, Origin("upload", username=username), on_progress=progress.advance,
                               display_names=display_names, on_file=on_file)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    listed = {result["name"] for result in results}
    for problem in summary.problems:  # files refused before reading (a damaged ZIP member)
        name, _, reason = problem.partition(": ")
        if name not in listed:
            results.append({"name": name, "outcome": "rejected", "accepted": False,
                            "reason": _without(reason, folder), "study_pk": None})
    uids = dict(Study.objects.filter(pk__in=study_pks).values_list("pk", "study_instance_uid"))
    for result in results:
        result["study_uid"] = uids.get(result.pop("study_pk"), "")
    path = results_path(progress.job.pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    _prune_results(path.parent)
    path.write_text(json.dumps(results))
    Job.objects.get(pk=progress.job.pk).studies.add(*study_pks)
    rejected = sum(1 for result in results if not result["accepted"])
    if rejected:
        progress.advance(0, failed=rejected)
    return summary_message(summary)
