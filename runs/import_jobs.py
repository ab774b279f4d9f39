"""The background prompt-import job (RQ) and its progress, for the browser's import flow.

The import runs in one database transaction (all or nothing), so its progress cannot live in the database
rows it is writing: the job publishes it in its RQ job ``meta`` (Redis, real or embedded), which the
prompt-set page polls through a small JSON endpoint.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from django.conf import settings
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job

from rlaif_site.queueing import get_queue
from runs.importing import BadInput, ImportOptions, import_into, open_source
from runs.models import PromptSet

logger = logging.getLogger(__name__)

#: An import of a few million rows fits well inside this.
IMPORT_JOB_TIMEOUT_S = 6 * 3600
PROGRESS_INTERVAL_S = 0.5


def uploads_dir() -> Path:
    """Where uploaded files wait for their import (under ``STUDIO_DATA_DIR``)."""
    return settings.DATA_DIR / "uploads"


def job_id_for(prompt_set: PromptSet) -> str:
    """The import's RQ job id, unique across databases sharing a Redis (:attr:`PromptSet.key`)."""
    return f"import-prompts-{prompt_set.key}"


def enqueue_import(
    prompt_set: PromptSet, location: str, options: ImportOptions, *, name: str = "", hub: bool = False,
    cleanup: str = "",
) -> str:
    """Mark ``prompt_set`` importing and enqueue :func:`run_import` (on the ``default`` queue, after commit).

    Args:
        location: a path on this server (an upload) or, with ``hub=True``, a hub dataset id.
        name: the name shown in messages (the uploaded file's name).
        cleanup: a folder to delete when the job ends (the upload's folder).

    Returns:
        The RQ job id.
    """
    job_id = job_id_for(prompt_set)
    prompt_set.mark_importing({"job_id": job_id, "source": name or location, "options": options.to_dict()})
    get_queue("default").enqueue(
        run_import, prompt_set.pk, location, options.to_dict(), name, hub, cleanup,
        job_id=job_id, job_timeout=IMPORT_JOB_TIMEOUT_S, result_ttl=3600, failure_ttl=24 * 3600,
    )
    return job_id


def run_import(prompt_set_id: int, location: str, options: dict, name: str = "", hub: bool = False,
               cleanup: str = "") -> dict:
    """RQ job: import ``location`` into prompt set ``prompt_set_id`` (status ``importing``).

    Bad input is not a job failure: it is recorded on the prompt set (status ``failed`` with the message)
    and the job returns normally. Other exceptions mark the set failed and re-raise.

    Returns:
        ``{"status": ..., "prompts": ...}``.
    """
    prompt_set = PromptSet.objects.get(pk=prompt_set_id)
    job = get_current_job()
    last = [0.0]

    def progress(rows_read: int, prompts: int, expected: int | None) -> None:
        if job is None or time.monotonic() - last[0] < PROGRESS_INTERVAL_S:
            return
        last[0] = time.monotonic()
        job.meta["progress"] = {"rows_read": rows_read, "prompts": prompts, "expected": expected}
        job.save_meta()

    source = None
    try:
        source = open_source(location, name=name or None, hub=hub)
        report = import_into(prompt_set, source, ImportOptions.from_dict(options), progress=progress)
        return {"status": "ready", "prompts": report["prompts"]}
    except BadInput as exc:
        if prompt_set.status != PromptSet.Status.FAILED:  # raised before import_into recorded it
            prompt_set.mark_import_failed(exc.as_dict())
        return {"status": "failed", "error": str(exc)}
    except BaseException as exc:
        logger.exception("prompt import %s failed", prompt_set_id)
        prompt_set.mark_import_failed({"message": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        if source is not None:
            source.close()
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)


def remove_stale_uploads(max_age_s: float = 24 * 3600) -> int:
    """Delete upload folders older than ``max_age_s`` (imports that were never started); returns how many."""
    removed, now = 0, time.time()
    if not uploads_dir().is_dir():
        return 0
    for folder in uploads_dir().iterdir():
        if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def import_job_lost(prompt_set: PromptSet) -> bool:
    """True when a set is still ``importing`` but its job is gone from the queue or failed (a worker was
    killed, or the embedded queue restarted): it will never finish and may be deleted."""
    if prompt_set.status != PromptSet.Status.IMPORTING:
        return False
    job_id = (prompt_set.import_report or {}).get("job_id")
    try:
        job = Job.fetch(job_id, connection=get_queue("default").connection) if job_id else None
    except NoSuchJobError:
        return True
    if job is None:
        return True
    status = str(getattr(job.get_status(refresh=True), "value", ""))
    return status in ("failed", "stopped", "canceled")


def import_progress(prompt_set: PromptSet) -> dict:
    """What the progress endpoint returns: ``status``, ``rows_read``, ``prompts``, ``expected``,
    ``fraction`` (0..1 or None), ``error`` (message or "")."""
    report = prompt_set.import_report or {}
    data = {
        "status": prompt_set.status, "rows_read": report.get("rows_read", 0), "prompts": report.get("prompts", 0),
        "expected": report.get("rows_read"), "fraction": None,
        "error": (report.get("error") or {}).get("message", ""),
    }
    if prompt_set.status == PromptSet.Status.READY:
        data["fraction"] = 1.0
    if prompt_set.status != PromptSet.Status.IMPORTING:
        return data
    job_id = report.get("job_id")
    try:
        job = Job.fetch(job_id, connection=get_queue("default").connection) if job_id else None
    except NoSuchJobError:
        job = None
    if job is None:
        data["error"] = "the import job is gone (the worker stopped?); delete this set and import again"
        return data
    status = job.get_status(refresh=True)
    data["job_status"] = str(getattr(status, "value", status))
    meta = job.get_meta(refresh=True).get("progress") or {}
    data.update(rows_read=meta.get("rows_read", 0), prompts=meta.get("prompts", 0), expected=meta.get("expected"))
    if data["expected"]:
        data["fraction"] = min(1.0, data["rows_read"] / data["expected"])
    return data
