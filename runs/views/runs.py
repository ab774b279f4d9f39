"""Run list, launch, run detail, its progress JSON and the operator actions (cancel, resume, retry, release)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q, Sum
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from constitutions.models import Constitution, ConstitutionVersion
from rlaif_site.roles import OPERATORS, role_required
from runs import drift, panel, services, summary
from runs.artifact_files import artifact_rows
from runs.charts import CACHE_SECONDS, data_version
from runs.config_diff import full_config
from runs.devices import QUEUES_PATH
from runs.estimate import estimate_for
from runs.forms import LaunchForm, initial_from_config, presets_for_js
from runs.models import (
    ACTIVE_STATUSES,
    Comparison,
    Completion,
    HumanLabel,
    Judgment,
    MetricPoint,
    PromptSet,
    Run,
    RunStatus,
    RunTag,
    StageRun,
    StageStatus,
)
from runs.presets import DEFAULT_PRESET, PRESETS
from runs.progress import LOG_TAIL_LINES
from runs.queue_position import waiting_message
from runs.run_notes import RunNotesForm, initial_for, save_notes
from runs.stages.registry import JUDGING_STAGES
from runs.templatetags.runs_extras import format_seconds
from runs.views.artifacts import policy_samples_path

ERROR_TAIL_CHARS = 3000


def run_list(request):
    """All runs as an experiment table: status and progress, final metrics and chosen hyper-parameters as
    sortable columns (``?sort=win_rate``, ``-`` for descending; see :mod:`runs.summary`), tags and notes.
    Filters: status, owner, constitution, prompt set, tag, name search, "mine"."""
    runs = Run.objects.select_related("owner", "constitution_version__constitution", "prompt_set").prefetch_related(
        Prefetch("stages", queryset=StageRun.objects.only(
            "id", "run_id", "stage", "status", "progress_done", "progress_total")),
        "tags",
    )
    f = {key: request.GET.get(key, "").strip()
         for key in ("status", "owner", "constitution", "prompt_set", "q", "tag", "sort")}
    if f["status"] in RunStatus.values:
        runs = runs.filter(status=f["status"])
    if f["owner"].isdigit():
        runs = runs.filter(owner_id=int(f["owner"]))
    if f["constitution"].isdigit():
        runs = runs.filter(constitution_version__constitution_id=int(f["constitution"]))
    if f["prompt_set"].isdigit():
        runs = runs.filter(prompt_set_id=int(f["prompt_set"]))
    if f["q"]:
        runs = runs.filter(name__icontains=f["q"])
    if f["tag"]:
        runs = runs.filter(tags__name=f["tag"])
    mine = bool(request.GET.get("mine"))
    if mine:
        runs = runs.filter(owner=request.user)
    ordered = summary.sort_runs(summary.with_summary(runs), f["sort"])
    page = Paginator(ordered, 50).get_page(request.GET.get("page"))
    summary.attach_alignment(page.object_list)
    for run in page:
        run.stage_rows = run.ordered_stages()
        run.current = next((s for s in run.stage_rows if s.stage == run.current_stage), None)
        run.stages_done = sum(s.status == StageStatus.SUCCEEDED for s in run.stage_rows)
        run.cells = [(c, getattr(run, c.key, None)) for c in summary.METRIC_COLUMNS + summary.PARAM_COLUMNS]
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    sort_query.pop("sort", None)
    return render(request, "runs/run_list.html", {
        "page": page, "statuses": RunStatus.choices, "filters": f, "mine": mine, "query": query.urlencode(),
        "sort_query": sort_query.urlencode(), "sort": f["sort"],
        "columns": summary.METRIC_COLUMNS + summary.PARAM_COLUMNS,
        "metric_count": len(summary.METRIC_COLUMNS), "param_count": len(summary.PARAM_COLUMNS),
        "status": f["status"], "tags": RunTag.objects.filter(runs__isnull=False).distinct(),
        "owners": get_user_model().objects.filter(runs__isnull=False).distinct().order_by("username"),
        "constitutions": Constitution.objects.filter(versions__runs__isnull=False).distinct(),
        "prompt_sets": PromptSet.objects.filter(runs__isnull=False).distinct(),
    })


# --- launch ----------------------------------------------------------------------------------------


@role_required(OPERATORS)
def run_launch(request):
    """The launch form (operators). GET ``?preset=`` fills it from a preset; POST with ``action=estimate``
    re-renders with the estimate; a valid POST launches the run and goes to its page."""
    estimate = None
    if request.method == "POST":
        form = LaunchForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            estimate = estimate_for(
                data["run_config"], data["prompt_set"], data["constitution_version"], data["stages"]
            )
            if request.POST.get("action") != "estimate":
                run = form.launch(request.user)
                messages.success(request, f"Launched {run}.")
                if queue_note := data["preflight"].fallbacks.get(QUEUES_PATH):
                    messages.warning(request, queue_note)  # e.g. no worker listens on the gpu queue yet
                return redirect("runs:detail", pk=run.pk)
    else:
        key = request.GET.get("preset", DEFAULT_PRESET)
        preset = PRESETS.get(key) or PRESETS[DEFAULT_PRESET]
        initial = initial_from_config(preset.full_config())
        initial.update(preset=preset.key, stages=list(preset.stages), name=f"{preset.label} {timezone.localdate()}")
        version = ConstitutionVersion.objects.filter(constitution__archived=False).order_by("-created_at").first()
        prompt_set = PromptSet.objects.filter(status=PromptSet.Status.READY).first()
        initial.update(constitution_version=version, prompt_set=prompt_set)
        if request.GET.get("from_run", "").isdigit():
            initial.update(_initial_from_run(int(request.GET["from_run"])))
        form = LaunchForm(initial=initial)
        for path, example in preset.placeholders.items():
            form.fields[path.replace(".", "__")].widget.attrs["placeholder"] = example
    return render(request, "runs/run_launch.html", {
        "form": form, "estimate": estimate, "presets": presets_for_js(), "preset_list": PRESETS.values(),
    })


def _initial_from_run(run_id: int) -> dict:
    """Form values copied from an earlier run ("launch again with changes")."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return {}
    initial = initial_from_config(full_config(run))  # upgraded to the current schema
    initial.update(
        name=f"{run.name} (copy)", constitution_version=run.constitution_version_id, prompt_set=run.prompt_set_id,
        stages=[s.stage for s in run.ordered_stages()], preset="",
    )
    return initial


@role_required(OPERATORS)
@require_POST
def launch_estimate(request):
    """The launch form's estimate as JSON.

    ``{"ok": true, "estimate": {...}}``, or ``{"ok": false, "errors": {field: [messages]}}``.
    """
    form = LaunchForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"ok": False, "errors": {k: [str(e) for e in v] for k, v in form.errors.items()}})
    data = form.cleaned_data
    est = estimate_for(data["run_config"], data["prompt_set"], data["constitution_version"], data["stages"])
    return JsonResponse({"ok": True, "estimate": est.as_dict()})


# --- run page ----------------------------------------------------------------------------------------


def run_detail(request, pk: int):
    """A run: stage timeline with live progress, operator actions, config, artifacts, counts and charts."""
    run = get_object_or_404(
        Run.objects.select_related("owner", "constitution_version__constitution", "prompt_set"), pk=pk
    )
    stages = run.ordered_stages()
    counts = run_counts(run)
    counts["human_labels"] = HumanLabel.objects.filter(comparison__run=run).count()
    other_runs = Run.objects.exclude(pk=run.pk).only("pk", "name", "created_at")[:100]
    return render(request, "runs/run_detail.html", {
        "run": run, "stages": stages, "counts": counts, "state": progress_state(run, stages),
        "artifacts": artifact_rows(run),
        "version_url": run.constitution_version.get_absolute_url() if run.constitution_version_id else None,
        "audit_url": reverse("runs:audit_dashboard", args=[run.pk]),
        "other_runs": other_runs,
        "config_json": run.config,
        "evaluation": evaluation_summary(run),
        "notes_form": RunNotesForm(initial=initial_for(run)),
        "has_samples": policy_samples_path(run).exists(),
        "log_lines": LOG_TAIL_LINES,
        "drift": drift.card(run) if run.kind != "external" else None,
        "panel": panel.report(run) if run.kind != "external" else None,
    })


def evaluation_summary(run: Run) -> dict | None:
    """The evaluate stage's headline figures (win rate of the tuned policy over the reference with its 95%
    interval, wins/ties/losses, mean reward-model score before and after), or None before it has run."""
    values = dict(MetricPoint.objects.filter(run=run, stage="evaluate").values_list("name", "value"))
    return values if "win_rate" in values else None


def run_counts(run: Run) -> dict:
    """Rows a run's stages wrote (completions, comparisons, judgments by outcome, judge cost), cached under the
    run's :func:`runs.charts.data_version` so a finished run's page does not count 100,000 rows each time."""
    key = f"runs:counts:{data_version([run], JUDGING_STAGES)}"
    counts = cache.get(key)
    if counts is None:
        counts = {
            "completions": Completion.objects.filter(run=run).count(),
            "comparisons": Comparison.objects.filter(run=run).count(),
            **Judgment.objects.filter(comparison__run=run).aggregate(
                judgments=Count("id"), failed=Count("id", filter=Q(verdict="")), cost=Sum("cost"),
                consistent=Count("id", filter=Q(position_consistent=True)),
                checked=Count("id", filter=Q(position_consistent__isnull=False)),
            ),
        }
        # The cost ledger counts every paid call, also those of unfinished or unstored judgments.
        from runs.models import JudgeCharge

        charged = JudgeCharge.objects.filter(run=run).aggregate(s=Sum("cost"))["s"]
        if charged is not None:
            counts["cost"] = max(charged, counts["cost"] or 0.0)
        cache.set(key, counts, CACHE_SECONDS)
    return counts


def _stage_state(stage_run: StageRun, now) -> dict:
    duration = None
    if stage_run.started_at:
        duration = ((stage_run.finished_at or now) - stage_run.started_at).total_seconds()
    # a resumed or retried stage: this attempt's time, and the total over every attempt
    total = stage_run.earlier_attempts_s + (duration or 0.0)
    shown = format_seconds(duration) if duration is not None else "—"
    if stage_run.earlier_attempts_s > 0 and duration is not None:
        shown += f" (total {format_seconds(total)} over {stage_run.attempt} attempts)"
    fraction = stage_run.fraction
    if stage_run.status == StageStatus.SUCCEEDED:
        fraction = 1.0
    message = stage_run.message
    reason, _, traceback_text = (stage_run.error or "").partition("\n")
    if stage_run.status == StageStatus.FAILED and reason:
        message = ""  # a failed stage says why (the error's first line), not its last progress text
    if stage_run.status == StageStatus.QUEUED:
        try:
            message = waiting_message(stage_run) or message
        except Exception:  # the queue is unreachable: the page still renders, with the stored message
            pass
    return {
        "stage": stage_run.stage,
        "label": stage_run.get_stage_display(),
        "status": stage_run.status,
        "status_display": stage_run.status_display,
        "done": stage_run.progress_done,
        "total": stage_run.progress_total,
        "fraction": fraction,
        "message": message,
        "attempt": stage_run.attempt,
        "started_at": stage_run.started_at.isoformat() if stage_run.started_at else None,
        "finished_at": stage_run.finished_at.isoformat() if stage_run.finished_at else None,
        "duration_s": duration,
        "total_duration_s": total,
        "duration": shown,
        "error": stage_run.error[-ERROR_TAIL_CHARS:] if stage_run.error else "",
        "reason": reason[:500],  # one line first; the traceback stays folded below it
        "traceback": traceback_text.strip()[-ERROR_TAIL_CHARS:],
        "log_tail": stage_run.log_tail,
        "retryable": stage_run.status in (StageStatus.FAILED, StageStatus.CANCELLED, StageStatus.SUCCEEDED),
    }


def progress_state(run: Run, stages: list[StageRun] | None = None) -> dict:
    """The run's live state as plain data (what the progress JSON returns and the page first renders)."""
    now = timezone.now()
    stages = stages if stages is not None else run.ordered_stages()
    active = run.status in ACTIVE_STATUSES
    return {
        "id": run.pk,
        "status": run.status,
        "status_display": run.status_display,
        "current_stage": run.current_stage,
        "active": active,
        "cancel_requested": run.cancel_requested,
        "can_cancel": active and not run.cancel_requested,
        "can_resume": run.status in (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.WAITING),
        "waiting": run.status == RunStatus.WAITING,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "stages": [_stage_state(s, now) for s in stages],
    }


@require_GET
def run_progress(request, pk: int):
    """``GET /runs/<pk>/progress.json``: the run's status and each stage's progress (polled by the run page);
    with ``?counts=1`` also the rows its stages wrote (see :func:`run_counts`)."""
    run = Run.objects.filter(pk=pk).first()
    if run is None:
        raise Http404("No such run.")
    state = progress_state(run)
    if request.GET.get("counts"):
        state["counts"] = {**run_counts(run),
                           "human_labels": HumanLabel.objects.filter(comparison__run=run).count()}
        state["evaluation"] = evaluation_summary(run)
        state["artifacts"] = artifact_rows(run)
    return JsonResponse(state)


# --- operator actions ------------------------------------------------------------------------------------


@role_required(OPERATORS)
@require_POST
def run_cancel(request, pk: int):
    """Ask the run to stop; a running stage stops at its next safe point and keeps its work."""
    run = get_object_or_404(Run, pk=pk)
    if run.status not in ACTIVE_STATUSES:
        messages.error(request, f"{run} is {run.get_status_display().lower()}; there is nothing to cancel.")
    else:
        services.cancel_run(run)
        messages.success(request, f"Cancel requested for {run}; finished work is kept.")
    return redirect("runs:detail", pk=pk)


@role_required(OPERATORS)
@require_POST
def run_resume(request, pk: int):
    """Continue a failed, cancelled or waiting run from its first unfinished stage."""
    run = get_object_or_404(Run, pk=pk)
    try:
        stage = services.resume_run(run)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Resumed {run}" + (f" at {stage.get_stage_display()}." if stage else "."))
    return redirect("runs:detail", pk=pk)


@role_required(OPERATORS)
@require_POST
def stage_retry(request, pk: int, stage: str):
    """Run ``stage`` again (and every stage after it); work the stage already stored is kept."""
    run = get_object_or_404(Run, pk=pk)
    try:
        services.resume_run(run, from_stage=stage)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Retrying {stage} of {run}.")
    return redirect("runs:detail", pk=pk)


@role_required(OPERATORS)
@require_POST
def run_release_gate(request, pk: int):
    """Let a run that waits at its audit gate or its drift guard continue (an operator's decision, recorded on
    the run or on the holding anchor check). The one release action of the run page and the audit dashboard
    (``back=audit`` returns to the dashboard)."""
    run = get_object_or_404(Run, pk=pk)
    what = "Drift guard" if drift.held_by(run) is not None else "Audit gate"
    stage = services.release_gate(run)
    queued = f" {stage.get_stage_display()} is queued." if stage else ""
    messages.success(request, f"{what} released for {run}.{queued}")
    if request.POST.get("back") == "audit":
        return redirect("runs:audit_dashboard", run_id=pk)
    return redirect("runs:detail", pk=pk)


@role_required(OPERATORS)
@require_POST
def run_notes(request, pk: int):
    """Set a run's tags (comma-separated) and note; errors come back as messages on the run page."""
    run = get_object_or_404(Run, pk=pk)
    form = RunNotesForm(request.POST)
    if form.is_valid():
        save_notes(run, form.cleaned_data["tags"], form.cleaned_data["note"])
        messages.success(request, f"Saved the tags and note of {run}.")
    else:
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}")
    return redirect("runs:detail", pk=pk)
