"""The pair browser: a run's judged pairs with prompt, both responses, verdict, each order's probability,
position consistency, principle, rationale and human labels; filterable and keyset-paginated so that a run
with 100,000 judgments pages as fast as one with ten."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q
from django.shortcuts import get_object_or_404, render
from django.utils.http import urlencode

from runs.audit.blind import blinded_comparison_ids
from runs.models import HumanLabel, Judgment, Run, Verdict
from runs.pair_search import MAX_QUERY, full_text_available, search_judgments

PAGE_SIZE = 25
#: The most comparison ids the ``comparisons`` filter takes.
MAX_IDS = 1000
VERDICT_FILTERS = {"A": Verdict.A, "B": Verdict.B, "tie": Verdict.TIE, "failed": Verdict.FAILED}
#: The ``judges`` filter: a panel's judges disagreed, or all gave the same verdict.
JUDGES_FILTERS = {"disagree": False, "agree": True}


def _float(value: str | None, low: float = 0.0, high: float = 1.0) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return min(high, max(low, number))


def filter_judgments(run: Run, params) -> tuple:
    """The filtered queryset of a run's judgments and the filter values actually applied.

    Filters (query parameters): ``q`` (text in the prompt, a response or the rationale:
    :func:`runs.pair_search.search_judgments`), ``principle`` (id), ``min_conf``/``max_conf`` (confidence
    |P(A) − 0.5| × 2, applied as ranges of P(A) so the index on ``p_a`` serves them), ``consistent`` (yes/no/unknown),
    ``verdict`` (A/B/tie/failed), ``audit`` (labelled/unlabelled), ``purpose`` (train/eval), ``comparisons``
    (comma-separated comparison ids, at most :data:`MAX_IDS`: e.g. the anchor pairs a drift check found
    judged otherwise), ``judges`` (disagree/agree: whether a panel's judges gave the same verdict,
    ``Judgment.judges_agree``; a run without a panel has neither).
    """
    qs = Judgment.objects.filter(comparison__run_id=run.pk)
    applied: dict[str, str] = {}
    query = " ".join(params.get("q", "").split())[:MAX_QUERY]
    if query:  # text search over prompt, responses and rationale (runs.pair_search)
        qs = search_judgments(qs, query)
        applied["q"] = query
    ids = sorted({int(part) for part in params.get("comparisons", "").split(",") if part.strip().isdigit()})[:MAX_IDS]
    if ids:
        qs = qs.filter(comparison_id__in=ids)
        applied["comparisons"] = ",".join(map(str, ids))
    principle = params.get("principle", "")
    if principle.isdigit():
        qs = qs.filter(principle_id=int(principle))
        applied["principle"] = principle
    min_conf, max_conf = _float(params.get("min_conf")), _float(params.get("max_conf"))
    if min_conf is not None and min_conf > 0:
        qs = qs.filter(Q(p_a__lte=0.5 - min_conf / 2) | Q(p_a__gte=0.5 + min_conf / 2))
        applied["min_conf"] = f"{min_conf:g}"
    if max_conf is not None and max_conf < 1:
        qs = qs.filter(p_a__gte=0.5 - max_conf / 2, p_a__lte=0.5 + max_conf / 2)
        applied["max_conf"] = f"{max_conf:g}"
    consistent = params.get("consistent", "")
    if consistent in ("yes", "no"):
        qs = qs.filter(position_consistent=(consistent == "yes"))
        applied["consistent"] = consistent
    elif consistent == "unknown":
        qs = qs.filter(position_consistent__isnull=True)
        applied["consistent"] = consistent
    verdict = params.get("verdict", "")
    if verdict in VERDICT_FILTERS:
        qs = qs.filter(verdict=VERDICT_FILTERS[verdict])
        applied["verdict"] = verdict
    audit = params.get("audit", "")
    if audit in ("labelled", "unlabelled"):
        labelled = Exists(HumanLabel.objects.filter(comparison_id=OuterRef("comparison_id")))
        qs = qs.filter(labelled if audit == "labelled" else ~labelled)
        applied["audit"] = audit
    purpose = params.get("purpose", "")
    if purpose in ("train", "eval"):
        qs = qs.filter(comparison__purpose=purpose)
        applied["purpose"] = purpose
    judges = params.get("judges", "")
    if judges in JUDGES_FILTERS:
        qs = qs.filter(judges_agree=JUDGES_FILTERS[judges])
        applied["judges"] = judges
    return qs, applied


def page_of(qs, before: int | None, after: int | None, size: int = PAGE_SIZE) -> tuple[list, bool, bool]:
    """One keyset page of ``qs`` ordered newest first (by id).

    Returns:
        ``(rows, has_older, has_newer)``; ``before`` pages to older rows, ``after`` to newer ones.
    """
    if after is not None:
        rows = list(qs.filter(pk__gt=after).order_by("pk")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        return rows, True, has_newer
    if before is not None:
        qs = qs.filter(pk__lt=before)
    rows = list(qs.order_by("-pk")[: size + 1])
    return rows[:size], len(rows) > size, before is not None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def pair_list(request, pk: int):
    """``/runs/<pk>/pairs/``: the judged pairs of a run, newest first, 25 a page."""
    run = get_object_or_404(Run.objects.select_related("constitution_version__constitution"), pk=pk)
    qs, applied = filter_judgments(run, request.GET)
    # Blind labeling: pairs this auditor has still to label are left out (with their verdicts and labels).
    blinded = blinded_comparison_ids(run, request.user)
    hidden = Judgment.objects.filter(comparison__run=run, comparison_id__in=blinded).count()
    qs = qs.exclude(comparison_id__in=blinded)
    qs = qs.select_related(
        "principle", "comparison__prompt", "comparison__completion_a", "comparison__completion_b"
    ).prefetch_related(
        Prefetch("comparison__human_labels", queryset=HumanLabel.objects.select_related("auditor").order_by("pk"))
    )
    rows, has_older, has_newer = page_of(qs, _int(request.GET.get("before")), _int(request.GET.get("after")))
    for judgment in rows:
        judgment.confidence = abs(judgment.p_a - 0.5) * 2 if judgment.p_a is not None else None
        for label in judgment.comparison.human_labels.all():
            # An auditor's note is private to its author (and superusers).
            label.note_visible = request.user.is_superuser or label.auditor_id == request.user.pk
    # a query's count of matching pairs, in the database (pairs, not judgments: a pair judged per principle once)
    matches = qs.values("comparison_id").distinct().count() if "q" in applied else None
    markdown = request.GET.get("render") == "markdown"
    base = urlencode(applied | ({"render": "markdown"} if markdown else {}))
    return render(request, "runs/pair_list.html", {
        "run": run,
        "judgments": rows,
        "applied": applied,
        # an external run (kind="external") pins no constitution version
        "principles": run.constitution_version.principles.order_by("position") if run.constitution_version_id else [],
        "older_url": f"?{base}&before={rows[-1].pk}" if rows and has_older else None,
        "newer_url": f"?{base}&after={rows[0].pk}" if rows and has_newer else None,
        "first_url": f"?{base}" if _int(request.GET.get("before")) or _int(request.GET.get("after")) else None,
        "verdicts": list(VERDICT_FILTERS),
        "blind_hidden": hidden,
        "has_panel": _has_panel(run),
        "matches": matches,
        "full_text": full_text_available(),
        "markdown": markdown,
        "plain_url": f"?{urlencode(applied)}",
        "markdown_url": f"?{urlencode(applied | {'render': 'markdown'})}",
    })


def _has_panel(run: Run) -> bool:
    """The run is judged by a panel of judges (``judge.panel``): the page offers the judges filter."""
    from training.config import ConfigError

    try:
        return bool(run.run_config.judge.panel)
    except ConfigError:
        return False
