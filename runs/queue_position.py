"""Why a queued stage has not started: the jobs ahead of it ("queued behind 2 jobs: run #3 · label
(running), prompt-set import #5").

Ahead of a job are the jobs before it in its RQ queue and the jobs workers are running. With the embedded
queue (no ``REDIS_URL``) one worker serves every queue one job at a time, so a job running in any queue
holds it; with Redis only the running jobs of its own queue are counted (workers elsewhere may serve others).
"""
from __future__ import annotations

from django.conf import settings
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry

from rlaif_site.queueing import get_queue, queue_names
from runs.models import StageRun, StageStatus

#: At most this many jobs are named; the count covers them all.
NAMED = 3


def describe_job(job: Job) -> str:
    """A short name for a job: a stage's own description (``#3 name · label``), ``prompt-set import #5``
    for an import, else the job's function name (never its arguments: they hold paths)."""
    func = job.func_name or ""
    if func.endswith("run_import"):
        return f"prompt-set import #{job.args[0]}" if job.args else "prompt-set import"
    if func.endswith("run_stage") and job.description and not job.description.startswith(func):
        return f"run {job.description}"
    return func.rsplit(".", 1)[-1] or job.id


def jobs_ahead(stage_run: StageRun) -> list[str] | None:
    """Names of the jobs the queued ``stage_run`` waits behind, running ones first (marked "running");
    None when the stage is not queued or its job is not in a queue (then nothing can be said)."""
    if stage_run.status != StageStatus.QUEUED or not stage_run.job_id:
        return None
    from runs.services import queue_name_for

    queue = get_queue(queue_name_for(stage_run.run, stage_run.stage))
    waiting = queue.get_job_ids()
    if stage_run.job_id not in waiting:
        return None
    ahead_ids = waiting[: waiting.index(stage_run.job_id)]
    embedded = not getattr(settings, "REDIS_URL", "")
    names = queue_names() if embedded else (queue.name,)
    running_ids = []
    for name in names:
        running_ids.extend(StartedJobRegistry(queue=get_queue(name)).get_job_ids())
    described = []
    for job_id, running in [(i, True) for i in running_ids] + [(i, False) for i in ahead_ids]:
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:
            continue
        described.append(describe_job(job) + (" (running)" if running else ""))
    return described


def waiting_message(stage_run: StageRun) -> str:
    """``"queued behind 2 jobs: run #3 a · label (running), prompt-set import #5"``; ``""`` when the stage
    is not queued or waits behind nothing (a worker will take it next)."""
    ahead = jobs_ahead(stage_run)
    if not ahead:
        return ""
    shown = ", ".join(ahead[:NAMED]) + (f" and {len(ahead) - NAMED} more" if len(ahead) > NAMED else "")
    return f"queued behind {len(ahead)} job{'s' if len(ahead) != 1 else ''}: {shown}"
