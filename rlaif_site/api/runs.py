"""Runs: list, launch (operators; the launch form's own validation), status and per-stage progress, cancel,
resume and retry (operators). Metrics, judgments and the preference export: :mod:`rlaif_site.api.run_results`."""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate

from rlaif_site.api.auth import require_role
from rlaif_site.api.errors import ApiError, ErrorOut, form_errors
from rlaif_site.roles import OPERATORS
from runs import services
from runs.estimate import estimate_for
from runs.forms import direct_launch_form, requested_config
from runs.models import ACTIVE_STATUSES, Run
from runs.presets import PRESETS
from runs.stages.registry import STAGES
from runs.views.runs import progress_state
from training.config import ConfigError

router = Router()

class RunOut(Schema):
    id: int
    name: str
    kind: str
    status: str
    current_stage: str
    owner: str | None
    constitution_version_id: int | None
    prompt_set_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str

    # The list returns Run rows (paginated in the database), the other endpoints :func:`run_out` dicts.
    @staticmethod
    def resolve_owner(run) -> str | None:
        if isinstance(run, dict):
            return run["owner"]
        return run.owner.get_username() if run.owner else None

    @staticmethod
    def resolve_url(run) -> str:
        return run["url"] if isinstance(run, dict) else reverse("runs:detail", args=[run.pk])


class StageOut(Schema):
    stage: str
    label: str
    status: str
    status_display: str
    done: int
    total: int | None
    fraction: float | None
    message: str
    attempt: int
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    error: str
    retryable: bool


class ProgressOut(Schema):
    id: int
    status: str
    status_display: str
    current_stage: str
    active: bool
    cancel_requested: bool
    can_cancel: bool
    can_resume: bool
    waiting: bool
    started_at: str | None
    finished_at: str | None
    stages: list[StageOut]


class RunDetail(RunOut):
    status_display: str
    config: dict[str, Any]
    progress: ProgressOut


class LaunchIn(Schema):
    """A run to launch: a preset and/or a config, with dotted overrides, validated as the launch form does.

    ``config`` is merged over the preset (or the defaults), ``set`` over that (``{"judge.concurrency": 4}``).
    """

    name: str = ""
    constitution_version: int
    prompt_set: int
    preset: str | None = None
    config: dict[str, Any] = {}
    set: dict[str, Any] = {}
    stages: list[str] | None = None
    gpu_queue: bool = False
    estimate_only: bool = False


class LaunchOut(Schema):
    run: RunDetail | None
    estimate: dict[str, Any]
    #: what the run will do instead where a model lacks something (``{config path: fallback}``)
    preflight_fallbacks: dict[str, str] = {}


def run_out(run: Run) -> dict:
    """A run's summary fields (:class:`RunOut`) as plain data."""
    return {
        "id": run.pk, "name": run.name, "kind": run.kind, "status": run.status, "status_display": run.status_display,
        "current_stage": run.current_stage, "owner": run.owner.get_username() if run.owner else None,
        "constitution_version_id": run.constitution_version_id, "prompt_set_id": run.prompt_set_id,
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "url": reverse("runs:detail", args=[run.pk]),
    }


def run_detail(run: Run) -> dict:
    """A run with its config and live progress (:class:`RunDetail`; progress as the run page polls it)."""
    return {**run_out(run), "config": run.config, "progress": progress_state(run)}


def get_run(run_id: int) -> Run:
    """The run, or a 404 JSON answer."""
    return get_object_or_404(Run.objects.select_related("owner"), pk=run_id)


class RunFilters(Schema):
    status: str = ""
    kind: str = ""
    owner: str = ""
    q: str = ""
    tag: str = ""
    mine: bool = False


@router.get("/", response=list[RunOut], summary="List runs (newest first)")
@paginate(PageNumberPagination, page_size=50)
def list_runs(request, filters: Query[RunFilters]):
    qs = Run.objects.select_related("owner").order_by("-created_at")
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.owner:
        qs = qs.filter(owner__username=filters.owner)
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    if filters.tag:
        qs = qs.filter(tags__name=filters.tag)
    if filters.mine:
        qs = qs.filter(owner=request.user)
    return qs  # paginated in the database; RunOut's resolvers read each row


def _config_for(payload: LaunchIn) -> tuple[dict, list[str]]:
    """The config and stages the launch asks for (``manage.py launch_run``'s rule: preset, then config, then
    each dotted override; :func:`runs.forms.requested_config`)."""
    try:
        config, stages = requested_config(payload.preset, payload.config, list(payload.set.items()))
    except ConfigError as exc:
        raise ApiError(400, "The launch request is invalid.", [{"path": exc.path, "message": exc.message}]) from None
    return config, payload.stages or stages


def _path_of(field: str) -> str:
    """A launch form field's dotted config path (``judge__model`` → ``judge.model``)."""
    return field.replace("__", ".")


@router.post("/", response={201: LaunchOut, 200: LaunchOut, 400: ErrorOut, 403: ErrorOut},
             summary="Launch a run (operators)")
def launch(request, payload: LaunchIn):
    """Validated by :class:`runs.forms.LaunchForm`, the launch page's own form (config checks and the launch
    pre-flight: models, tokenizers, lengths, endpoints, keys): its errors come back with the dotted config
    path. ``estimate_only`` returns the estimate (200) and launches nothing."""
    require_role(request, OPERATORS)
    config, stages = _config_for(payload)
    top = {"name": payload.name or (PRESETS[payload.preset].label if payload.preset else "API run"),
           "constitution_version": payload.constitution_version, "prompt_set": payload.prompt_set,
           "stages": stages, "gpu_queue": payload.gpu_queue}
    form = direct_launch_form(config, **top)
    if not form.is_valid():
        raise ApiError(400, "The run is invalid.", form_errors(form, _path_of))
    data = form.cleaned_data
    estimate = estimate_for(data["run_config"], data["prompt_set"], data["constitution_version"], data["stages"])
    checked = data.get("preflight")
    fallbacks = dict(checked.fallbacks) if checked is not None else {}
    if payload.estimate_only:
        return Status(200, {"run": None, "estimate": estimate.as_dict(), "preflight_fallbacks": fallbacks})
    run = form.launch(request.user)  # the page's own launch path (records the pre-flight's fallbacks)
    return Status(201, {"run": run_detail(run), "estimate": estimate.as_dict(), "preflight_fallbacks": fallbacks})


@router.get("/{int:run_id}", response=RunDetail, summary="A run: config, status and per-stage progress")
def get_run_detail(request, run_id: int):
    return run_detail(get_run(run_id))


@router.post("/{int:run_id}/cancel", response={200: RunDetail, 409: ErrorOut, 403: ErrorOut},
             summary="Cancel a run (operators)")
def cancel(request, run_id: int):
    require_role(request, OPERATORS)
    run = get_run(run_id)
    if run.status not in ACTIVE_STATUSES:
        raise ApiError(409, f"Run {run.pk} is {run.get_status_display().lower()}; there is nothing to cancel.")
    services.cancel_run(run)  # an external run ends at once (no job to wait for); its script learns it next batch
    run.refresh_from_db()
    return run_detail(run)


def _resume(run: Run, from_stage: str | None = None) -> dict:
    if run.kind == "external":
        raise ApiError(409, "An external run is driven by its own script; it cannot be resumed here.")
    try:
        services.resume_run(run, from_stage=from_stage)
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    run.refresh_from_db()
    return run_detail(run)


@router.post("/{int:run_id}/resume", response={200: RunDetail, 409: ErrorOut, 403: ErrorOut},
             summary="Resume a failed, cancelled or waiting run (operators)")
def resume(request, run_id: int):
    require_role(request, OPERATORS)
    return _resume(get_run(run_id))


@router.post("/{int:run_id}/stages/{stage}/retry", response={200: RunDetail, 409: ErrorOut, 403: ErrorOut,
                                                              400: ErrorOut},
             summary="Run a stage again, and every stage after it (operators)")
def retry_stage(request, run_id: int, stage: str):
    require_role(request, OPERATORS)
    if stage not in STAGES:
        raise ApiError(400, "Unknown stage.", [{"path": "stage", "message": f"one of {', '.join(STAGES)}"}])
    return _resume(get_run(run_id), from_stage=stage)
