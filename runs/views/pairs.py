"""The pair browser: a run's judged pairs with prompt, both responses, verdict, each order's probability,
position consistency, principle, rationale, human labels and flags; filterable and keyset-paginated so that a run
with 100,000 judgments pages as fast as one with ten. Responses as plain text or Markdown, chat prompts as text or
turns; bulk actions on every matching pair and saved views (:mod:`runs.pair_actions`)."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from rlaif_site.roles import AUDITORS, OPERATORS, REVIEWERS, has_role
from runs import pair_actions
from runs.audit.blind import blinded_comparison_ids
from runs.models import AuditItem, HumanLabel, Judgment, PairFlag, Run, SavedPairView, Verdict
from runs.pair_forms import ACTIONS, BulkActionForm, SavedViewForm
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
    ``verdict`` (A/B/tie/failed), ``audit`` (labelled/unlabelled; sampled/unsampled: in the run's audit sample
    or not), ``flagged`` (yes/no: flagged by anyone from the pair browser), ``purpose`` (train/eval), ``comparisons``
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
    elif audit in ("sampled", "unsampled"):
        sampled = Exists(AuditItem.objects.filter(run_id=run.pk, comparison_id=OuterRef("comparison_id")))
        qs = qs.filter(sampled if audit == "sampled" else ~sampled)
        applied["audit"] = audit
    flagged = params.get("flagged", "")
    if flagged in ("yes", "no"):
        has_flag = Exists(PairFlag.objects.filter(comparison_id=OuterRef("comparison_id")))
        qs = qs.filter(has_flag if flagged == "yes" else ~has_flag)
        applied["flagged"] = flagged
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


def visible_judgments(run: Run, user, params) -> tuple:
    """The filtered judgments of ``run`` that ``user`` may see (blind labeling: the audit pairs they have still
    to label are left out), the filters applied, and how many judgments were left out for blindness."""
    qs, applied = filter_judgments(run, params)
    blinded = blinded_comparison_ids(run, user)
    hidden = Judgment.objects.filter(comparison__run=run, comparison_id__in=blinded).count()
    return qs.exclude(comparison_id__in=blinded), applied, hidden


def pair_list(request, pk: int):
    """``/runs/<pk>/pairs/``: the judged pairs of a run, newest first, 25 a page."""
    run = get_object_or_404(Run.objects.select_related("constitution_version__constitution"), pk=pk)
    # Blind labeling: pairs this auditor has still to label are left out (with their verdicts and labels).
    qs, applied, hidden = visible_judgments(run, request.user, request.GET)
    qs = qs.select_related(
        "principle", "comparison__prompt", "comparison__completion_a", "comparison__completion_b"
    ).prefetch_related(
        Prefetch("comparison__human_labels", queryset=HumanLabel.objects.select_related("auditor").order_by("pk")),
        Prefetch("comparison__flags", queryset=PairFlag.objects.select_related("flagged_by").order_by("pk")),
    )
    rows, has_older, has_newer = page_of(qs, _int(request.GET.get("before")), _int(request.GET.get("after")))
    for judgment in rows:
        judgment.confidence = abs(judgment.p_a - 0.5) * 2 if judgment.p_a is not None else None
        for label in judgment.comparison.human_labels.all():
            # An auditor's note is private to its author (and superusers).
            label.note_visible = request.user.is_superuser or label.auditor_id == request.user.pk
    # a query's count of matching pairs, in the database (pairs, not judgments: a pair judged per principle once)
    matches = qs.values("comparison_id").distinct().count() if "q" in applied else None
    display = pair_actions.display_options(request.GET)
    base = urlencode(applied | display)
    without = {key: {k: v for k, v in display.items() if k != key} for key in pair_actions.DISPLAY_PARAMS}
    return render(request, "runs/pair_list.html", {
        "run": run,
        "judgments": rows,
        "applied": applied,
        "display": display,
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
        "markdown": display.get("render") == "markdown",
        "turns": display.get("prompt") == "turns",
        "plain_url": f"?{urlencode(applied | without['render'])}",
        "markdown_url": f"?{urlencode(applied | display | {'render': 'markdown'})}",
        "prompt_text_url": f"?{urlencode(applied | without['prompt'])}",
        "prompt_turns_url": f"?{urlencode(applied | display | {'prompt': 'turns'})}",
        "saved_views": SavedPairView.objects.filter(user=request.user, run=run),
        "view_form": SavedViewForm(),
        "actions": {name: label for name, label in ACTIONS.items() if may_act(request.user, name)},
        "max_bulk": pair_actions.MAX_BULK,
    })


def may_act(user, action: str) -> bool:
    """Whether ``user`` may run bulk ``action``: adding to the audit sample takes the auditors or operators role
    (as drawing a sample does); flags take the auditors, reviewers or operators role."""
    if action == "add_to_audit":
        return has_role(user, AUDITORS) or has_role(user, OPERATORS)
    return has_role(user, AUDITORS) or has_role(user, REVIEWERS) or has_role(user, OPERATORS)


def _browser_url(run: Run, applied: dict, display: dict | None = None) -> str:
    query = urlencode(applied | (display or {}))
    return reverse("runs:pairs", args=[run.pk]) + (f"?{query}" if query else "")


@require_POST
def pair_bulk(request, pk: int):
    """A bulk action on every pair the posted filters match (those the user may see): the first post shows a
    confirmation with the count; the action runs when posted again with that count and the filters still match
    as many pairs. At most :data:`runs.pair_actions.MAX_BULK` pairs."""
    run = get_object_or_404(Run, pk=pk)
    form = BulkActionForm(request.POST)
    qs, applied, _ = visible_judgments(run, request.user, request.POST)
    display = pair_actions.display_options(request.POST)
    back = _browser_url(run, applied, display)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
        messages.error(request, f"Bulk action not run: {errors}")
        return redirect(back)
    action = form.cleaned_data["action"]
    if not may_act(request.user, action):
        raise PermissionDenied("Adding pairs to the audit sample needs the 'auditors' or 'operators' role."
                               if action == "add_to_audit" else
                               "Flagging pairs needs the 'auditors', 'reviewers' or 'operators' role.")
    count = pair_actions.matching_comparisons(qs).count()
    if count == 0:
        messages.info(request, "No pair matches these filters: nothing to do.")
        return redirect(back)
    if count > pair_actions.MAX_BULK:
        messages.error(request, f"{count} pairs match these filters; a bulk action takes at most "
                                f"{pair_actions.MAX_BULK}. Narrow the filters and try again.")
        return redirect(back)
    if form.cleaned_data["confirm"] != count:
        return render(request, "runs/pair_bulk_confirm.html", {
            "run": run, "action": action, "action_label": ACTIONS[action], "count": count, "applied": applied,
            "display": display, "note": form.cleaned_data["note"], "back": back,
            "changed": form.cleaned_data["confirm"],
            "add_plan": pair_actions.plan_add_to_audit(run, qs) if action == "add_to_audit" else None,
        })
    if action == "add_to_audit":
        done = pair_actions.add_to_audit_sample(run, qs)
        messages.success(request, f"Added {done.new} pair{'s' if done.new != 1 else ''} to the audit sample "
                                  f"(stratum 'chosen')" + (f"; {done.already} were in it already" if done.already
                                                            else "")
                         + (f"; {done.unusable} could not join (failed judgments or identical replies)"
                            if done.unusable else "") + ".")
    elif action == "flag":
        added = pair_actions.flag_pairs(request.user, qs, form.cleaned_data["note"])
        messages.success(request, f"Flagged {added} pair{'s' if added != 1 else ''}"
                                  + (f" ({count - added} had your flag already)." if count - added else "."))
    else:
        removed = pair_actions.unflag_pairs(request.user, qs)
        messages.success(request, f"Removed your flag from {removed} pair{'s' if removed != 1 else ''}.")
    return redirect(back)


@require_POST
def saved_view_save(request, pk: int):
    """Save the posted filters and display toggles as a named view of this run's pair browser, for this user."""
    run = get_object_or_404(Run, pk=pk)
    _, applied = filter_judgments(run, request.POST)
    display = pair_actions.display_options(request.POST)
    form = SavedViewForm(request.POST)
    if form.is_valid():
        try:
            view, created = pair_actions.save_view(request.user, run, form.cleaned_data["name"],
                                                   pair_actions.view_query(applied, display))
        except ValueError as exc:
            messages.error(request, f"View not saved: {exc}.")
        else:
            messages.success(request, f"View '{view.name}' {'saved' if created else 'replaced'}.")
    else:
        messages.error(request, "View not saved: " + " ".join(form.errors["name"]))
    return redirect(_browser_url(run, applied, display))


@require_POST
def saved_view_delete(request, pk: int, view_id: int):
    """Delete one of the user's saved views (another user's is not found)."""
    run = get_object_or_404(Run, pk=pk)
    deleted, _ = SavedPairView.objects.filter(pk=view_id, run=run, user=request.user).delete()
    if not deleted:
        raise Http404("No such saved view of yours.")
    messages.success(request, "Saved view deleted.")
    return redirect("runs:pairs", pk=run.pk)


def _has_panel(run: Run) -> bool:
    """The run is judged by a panel of judges (``judge.panel``): the page offers the judges filter."""
    from training.config import ConfigError

    try:
        return bool(run.run_config.judge.panel)
    except ConfigError:
        return False
