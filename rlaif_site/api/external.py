"""External runs: a user's own training script (TRL, a plain ``transformers.Trainer``) logs into a run of
kind ``external`` through these endpoints, usually via ``training/integrations/studio_callback.py``: it
creates the run with its config, sends metrics per step in batches, names its artifacts' paths, and says
how it ended. The run shows on the same run page as product runs, its curves in the same panels (metrics are
stored under one pipeline stage, ``policy`` by default, so a TRL policy run lines up with product runs).

An external run is pinned to no constitution version or prompt set; only its owner (or a superuser) may
write to it, and creating one needs the operators role, as launching a run does.
"""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

import math
from typing import Any, Literal

from django.db import transaction
from django.db.models import Max
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status

from rlaif_site.api.auth import require_role
from rlaif_site.api.errors import ApiError, ErrorOut
from rlaif_site.api.runs import RunDetail, run_detail
from rlaif_site.roles import OPERATORS
from runs.models import Artifact, MetricPoint, Run, RunStatus, StageRun, StageStatus
from runs.stages.registry import METRIC_STAGES
from training.redaction import redact, redact_json

router = Router()

#: The stages an external run may log under: those that record metrics.
StageName = Literal[METRIC_STAGES]
#: Points accepted in one metrics call.
MAX_POINTS_PER_CALL = 10_000


class ExternalRunIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    config: dict[str, Any] = {}
    stage: StageName = "policy"
    total_steps: int | None = Field(None, ge=0)
    note: str = ""


class MetricIn(Schema):
    step: int
    name: str = Field(..., min_length=1, max_length=100)
    value: float


class MetricsIn(Schema):
    points: list[MetricIn] = Field(..., max_length=MAX_POINTS_PER_CALL)
    total_steps: int | None = Field(None, ge=0)


class MetricsOut(Schema):
    cancel_requested: bool
    stored: int
    skipped_non_finite: int
    last_step: int | None


class ArtifactIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    path: str = Field(..., min_length=1, max_length=1000)
    kind: Literal["checkpoint", "policy", "reward_model", "sft_model", "dataset", "report"] = "checkpoint"
    metrics: dict[str, float] = {}


class ArtifactsIn(Schema):
    artifacts: list[ArtifactIn]


class FinishIn(Schema):
    status: Literal["succeeded", "failed", "cancelled"] | None = None
    config: dict[str, Any] | None = None
    error: str = ""


def _owned_external(request, run_id: int) -> tuple[Run, StageRun]:
    run = get_object_or_404(Run, pk=run_id)
    if run.kind != "external":
        raise ApiError(409, f"Run {run.pk} is not an external run; only external runs take logged metrics.")
    if run.owner_id != request.user.pk and not request.user.is_superuser:
        raise ApiError(403, "Only the run's owner may log into it.")
    stage = run.stages.first()
    return run, stage


@router.post("/", response={201: RunDetail, 403: ErrorOut, 422: ErrorOut}, summary="Create an external run (operators)")
def create(request, payload: ExternalRunIn):
    """A run of kind ``external``, running, with one stage row (``stage``) that carries the logged steps as
    its progress. The config is stored with secret values redacted."""
    require_role(request, OPERATORS)
    now = timezone.now()
    with transaction.atomic():
        run = Run.objects.create(
            name=payload.name, kind="external", owner=request.user, config=redact_json(payload.config),
            status=RunStatus.RUNNING, current_stage=payload.stage, started_at=now, note=payload.note,
        )
        StageRun.objects.create(run=run, stage=payload.stage, status=StageStatus.RUNNING, started_at=now,
                                heartbeat_at=now, progress_total=payload.total_steps, attempt=1,
                                message="logged by an external script")
    return Status(201, run_detail(run))


@router.post("/{int:run_id}/metrics", response={200: MetricsOut, 403: ErrorOut, 409: ErrorOut},
             summary="Log metric points (owner)")
def log_metrics(request, run_id: int, payload: MetricsIn):
    """Upsert ``(step, name, value)`` points under the run's stage (a step logged twice keeps the last
    value); NaN and infinities are skipped and counted. The stage's progress becomes the last step."""
    run, stage = _owned_external(request, run_id)
    now = timezone.now()
    rows, skipped = {}, 0
    for p in payload.points:
        if not math.isfinite(p.value):
            skipped += 1
            continue
        rows[(p.name, p.step)] = MetricPoint(run=run, stage=stage.stage, step=p.step, name=p.name, value=p.value,
                                             created_at=now)
    MetricPoint.objects.bulk_create(
        list(rows.values()), update_conflicts=True, unique_fields=["run", "stage", "name", "step"],
        update_fields=["value", "created_at"],
    )
    last = MetricPoint.objects.filter(run=run).aggregate(m=Max("step"))["m"]
    stage.progress_done = max(0, last or 0)
    stage.heartbeat_at = now
    fields = ["progress_done", "heartbeat_at"]
    if payload.total_steps is not None:
        stage.progress_total = payload.total_steps
        fields.append("progress_total")
    stage.save(update_fields=fields)
    return {"cancel_requested": run.cancel_requested, "stored": len(rows), "skipped_non_finite": skipped,
            "last_step": last}


@router.post("/{int:run_id}/artifacts", response={200: RunDetail, 403: ErrorOut, 409: ErrorOut},
             summary="Record artifacts' paths (owner)")
def log_artifacts(request, run_id: int, payload: ArtifactsIn):
    """Paths on the script's machine (checkpoints, the final model): listed on the run page, not uploaded."""
    run, _stage = _owned_external(request, run_id)
    for a in payload.artifacts:
        Artifact.objects.update_or_create(run=run, kind=a.kind, name=a.name,
                                          defaults={"path": a.path, "metrics": a.metrics})
    return run_detail(run)


@router.patch("/{int:run_id}", response={200: RunDetail, 403: ErrorOut, 409: ErrorOut},
              summary="Update the config or end the run (owner)")
def update(request, run_id: int, payload: FinishIn):
    run, stage = _owned_external(request, run_id)
    now = timezone.now()
    if payload.config is not None:
        run.config = redact_json(payload.config)
        run.save(update_fields=["config"])
    if payload.status:
        run.status, run.finished_at, run.current_stage = payload.status, now, ""
        run.save(update_fields=["status", "finished_at", "current_stage"])
        stage.status, stage.finished_at, stage.heartbeat_at = payload.status, now, now
        stage.error = redact(payload.error)[-20_000:]
        stage.message = "" if payload.status == "succeeded" else payload.status
        stage.save(update_fields=["status", "finished_at", "heartbeat_at", "error", "message"])
    return run_detail(run)
