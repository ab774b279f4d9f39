"""The drift guard: before the label stage labels anything, its judge re-judges a seeded sample of an anchor set,
and the run waits for an operator when the judge no longer agrees with it.

A judge behind an endpoint can change without notice while its id (backend, model name, URL) stays the same.
A run names an anchor in its judge config (``judge.anchor_run``, ``anchor_source``, ``anchor_sample``,
``anchor_min_agreement``): the train comparisons of an earlier run with the verdicts kept for them, either its
AI judgments (``ai``: the majority over principles of its own judge's verdicts) or its human labels
(``human``: the human majority, :func:`runs.audit.queries.human_majority`). Only pairs whose kept verdict is
A or B are anchors.

:func:`guard` (called by :mod:`runs.stages.label`) draws ``anchor_sample`` of them with ``judge.seed``, has the
run's judge judge them again in memory (:func:`runs.stages.judging.rejudge`: under the anchor run's
constitution version and its principle draw, so the judge is the only thing that changed; no ``Judgment`` rows,
the request cache not read) and compares the verdicts (:func:`training.drift.compare_verdicts`: ties either
side and failures are left out and counted). The result is an :class:`~runs.models.AnchorCheck`. Below
``anchor_min_agreement`` it raises :class:`runs.gate.Hold`: the label stage and the run wait, with a message
saying what changed. An operator releases the hold (:func:`release_hold`, through
:func:`runs.services.release_gate`) or cancels the run; a resume checks again.
"""
from __future__ import annotations

from collections import defaultdict

from django.urls import reverse

from runs.gate import Hold
from runs.models import AnchorCheck, AnchorSource, Comparison, Judgment, Run, Stage, StageStatus
from training.config import ConfigError, JudgeConfig
from training.drift import compare_verdicts, majority_verdict, sample_anchor
from training.judges import judge_id_for
from training.panel import verdict_judge_id

#: Judge ids are cut to this many characters in the waiting message (it holds 500 in all).
ID_CHARS = 110
#: How a message names each anchor source.
SOURCE_WORDS = {AnchorSource.AI: "AI judgments", AnchorSource.HUMAN: "human labels"}


def anchor_judge_id(anchor_run: Run) -> str:
    """The judge id of ``anchor_run``'s verdicts (its config's judge, or its panel's verdicts:
    :func:`training.panel.verdict_judge_id`); "" when its config does not read."""
    try:
        return verdict_judge_id(anchor_run.run_config.judge)
    except ConfigError:
        return ""


def anchor_verdicts(anchor_run: Run, source: str) -> dict[int, str]:
    """The anchor pairs of ``anchor_run``: its train comparisons whose kept verdict is decisive.

    Args:
        source: ``human`` (the human majority of each labelled comparison) or ``ai`` (the majority over
            principles of the successful judgments of the anchor run's own judge).

    Returns:
        ``{comparison id: "A" | "B"}``; degenerate pairs (identical replies) are left out.
    """
    from runs.audit.queries import human_majority, without_degenerate_pairs

    comparisons = without_degenerate_pairs(Comparison.objects.filter(run=anchor_run, purpose="train"), "")
    if source == AnchorSource.HUMAN:
        kept = human_majority(comparisons)
    else:
        verdicts: dict[int, list[str]] = defaultdict(list)
        judged = Judgment.objects.filter(comparison__in=comparisons.values("pk"), judge_id=anchor_judge_id(anchor_run))
        for cid, verdict in judged.exclude(verdict="").values_list("comparison_id", "verdict"):
            verdicts[cid].append(verdict)
        kept = {cid: majority_verdict(v) for cid, v in verdicts.items()}
    return {cid: verdict for cid, verdict in kept.items() if verdict in ("A", "B")}


def anchor_problem(config: JudgeConfig) -> tuple[str, str] | None:
    """What is wrong with a judge config's anchor, for the launch's pre-flight: ``(dotted path, message)``,
    or None when the anchor run exists and has at least ``anchor_sample`` anchor pairs (or the guard is off)."""
    if not config.anchor_run:
        return None
    anchor = Run.objects.filter(pk=config.anchor_run, kind="rlaif").first()
    if anchor is None:
        return "judge.anchor_run", f"there is no run #{config.anchor_run} to take anchor pairs from"
    n = len(anchor_verdicts(anchor, config.anchor_source))
    if n < config.anchor_sample:
        what = "a decisive human label" if config.anchor_source == AnchorSource.HUMAN else "a decisive AI verdict"
        return "judge.anchor_sample", (
            f"run #{anchor.pk} has {n} pair{'s' if n != 1 else ''} with {what}; the drift guard re-judges "
            f"{config.anchor_sample}: lower judge.anchor_sample, or choose another anchor run or source")
    return None


def check_anchor(run: Run, reporter) -> AnchorCheck:
    """Re-judge a seeded sample of ``run``'s anchor with its judge and store the comparison.

    Raises:
        ValueError: the anchor run is missing, is this run, or has no anchor pairs.
        runs.stages.judging.JudgeUnavailable: the judge stopped answering.
    """
    from runs.stages.judging import rejudge

    config = run.run_config.judge
    anchor = Run.objects.filter(pk=config.anchor_run).select_related("constitution_version").first()
    if anchor is None or anchor.pk == run.pk or anchor.constitution_version_id is None:
        raise ValueError(f"judge.anchor_run: run #{config.anchor_run} cannot be this run's anchor (missing, this "
                         "run itself, or an external run)")
    kept = anchor_verdicts(anchor, config.anchor_source)
    if not kept:
        raise ValueError(f"judge.anchor_run: run #{anchor.pk} has no anchor pairs (none of its "
                         f"{SOURCE_WORDS[config.anchor_source]} is A or B)")
    chosen = sample_anchor(kept, config.anchor_sample, config.seed)
    judge_id = judge_id_for(config)
    reporter.log(f"drift guard: re-judging {len(chosen)} of the {len(kept)} anchor pairs of run #{anchor.pk} "
                 f"({SOURCE_WORDS[config.anchor_source]}) with {judge_id}")
    judged = rejudge(run, Comparison.objects.filter(pk__in=chosen), reporter,
                     version=anchor.constitution_version, sampling=anchor.run_config.judge)
    verdicts: dict[int, list[str]] = defaultdict(list)
    p_a: dict[int, list[float]] = defaultdict(list)
    errors: dict[int, str] = {}
    for pair in judged:
        cid = pair.key[0]
        if pair.verdict:
            verdicts[cid].append(pair.verdict)
            if pair.p_a is not None:
                p_a[cid].append(pair.p_a)
        else:
            errors.setdefault(cid, pair.error[:200])
    now = {cid: majority_verdict(verdicts[cid]) for cid in chosen}
    result = compare_verdicts({cid: kept[cid] for cid in chosen}, now)
    estimate = result.estimate
    check = AnchorCheck.objects.create(
        run=run, anchor_run=anchor, source=config.anchor_source, judge_id=judge_id,
        anchor_judge_id=anchor_judge_id(anchor), sampled=len(chosen), n=result.n, agree=result.agree,
        ties=result.ties, failed=result.failed, agreement=estimate.value, low=estimate.low, high=estimate.high,
        threshold=config.anchor_min_agreement, passed=result.passes(config.anchor_min_agreement),
        disagreeing=list(result.disagreeing),
        pairs=[{"comparison": cid, "anchor": kept[cid], "now": now[cid],
                "p_a": sum(p_a[cid]) / len(p_a[cid]) if p_a[cid] else None,
                **({"error": errors[cid]} if not now[cid] and cid in errors else {})} for cid in chosen],
    )
    reporter.log(f"drift guard: {summary(check)}")
    return check


def guard(run: Run, reporter) -> AnchorCheck | None:
    """The label stage's first step: check the run's judge against its anchor, unless the guard is off or this
    judge already passed (or an operator released it) against the same anchor.

    Returns:
        The check that lets the stage go on, or None when the run names no anchor.

    Raises:
        runs.gate.Hold: the judge's agreement with the anchor is below ``judge.anchor_min_agreement``.
    """
    config = run.run_config.judge
    if not config.anchor_run:
        return None
    earlier = run.anchor_checks.filter(judge_id=judge_id_for(config), anchor_run_id=config.anchor_run,
                                       source=config.anchor_source).first()
    if earlier is not None and not earlier.holds:
        reporter.log(f"drift guard: {'released by an operator' if not earlier.passed else 'passed'} earlier "
                     f"({summary(earlier)})")
        return earlier
    check = check_anchor(run, reporter)
    if check.holds:
        raise Hold(hold_message(check))
    return check


def summary(check: AnchorCheck) -> str:
    """The agreement in one phrase: "agreement 45% [95% CI 26–66%] on 20 anchor pairs (threshold 80%; 1 tie
    and 0 failures left out)"."""
    if check.agreement is None:
        figure = "no agreement figure: no anchor pair got a decisive verdict"
    else:
        figure = (f"agreement {check.agreement:.0%} [95% CI {check.low:.0%}–{check.high:.0%}] on {check.n} "
                  f"anchor pair{'s' if check.n != 1 else ''}")
    return (f"{figure} (threshold {check.threshold:.0%}; {check.ties} tie{'s' if check.ties != 1 else ''} and "
            f"{check.failed} failure{'s' if check.failed != 1 else ''} left out)")


def hold_message(check: AnchorCheck) -> str:
    """What the waiting label stage says: the agreement against the threshold, the anchor, and the judge then
    and now (the same id says the endpoint's behaviour changed under it)."""
    then, now = check.anchor_judge_id or "unknown", check.judge_id
    judges = (f"judge {_cut(now)}, the same id as run #{check.anchor_run_id}'s: its answers differ now"
              if then == now else f"judge was {_cut(then)}, now {_cut(now)}")
    anchor = f"run #{check.anchor_run_id}'s {SOURCE_WORDS[check.source]}"
    left_out = (f"{check.ties} tie{'s' if check.ties != 1 else ''} and {check.failed} "
                f"failure{'s' if check.failed != 1 else ''} left out")
    if check.agreement is None:
        figure = (f"none of the {check.sampled} re-judged anchor pairs ({anchor}) got an A or B verdict, so no "
                  f"agreement to hold against the threshold {check.threshold:.0%} ({left_out})")
    else:
        figure = (f"agreement with {anchor} is {check.agreement:.0%} [95% CI {check.low:.0%}–{check.high:.0%}] "
                  f"on {check.n} anchor pair{'s' if check.n != 1 else ''}, below the threshold "
                  f"{check.threshold:.0%} ({left_out})")
    return (f"Drift guard: {figure}; {judges}. See the disagreeing pairs on this page, then release or "
            "cancel.")[:500]


def _cut(text: str) -> str:
    return text if len(text) <= ID_CHARS else text[: ID_CHARS - 1] + "…"


def held_by(run: Run) -> AnchorCheck | None:
    """The check that holds ``run``: its label stage waits and its latest check failed unreleased."""
    if not run.stages.filter(stage=Stage.LABEL, status=StageStatus.WAITING).exists():
        return None
    check = run.anchor_checks.first()
    return check if check is not None and check.holds else None


def release_hold(run: Run) -> bool:
    """An operator lets ``run`` go on although its judge disagrees with the anchor: the holding check is marked
    released (the label stage then skips the check). Returns whether a drift hold was released."""
    check = held_by(run)
    if check is None:
        return False
    check.release()
    return True


def disagreeing_url(check: AnchorCheck) -> str | None:
    """The anchor run's pair browser showing the pairs the judge now decides otherwise; None when there are
    none (or the anchor run is gone)."""
    if not check.disagreeing or check.anchor_run_id is None:
        return None
    ids = ",".join(str(cid) for cid in check.disagreeing)
    return f"{reverse('runs:pairs', args=[check.anchor_run_id])}?comparisons={ids}"


def card(run: Run) -> dict | None:
    """The run page's "Drift guard" card: the configured anchor and the latest check, or None when the run
    names no anchor and was never checked."""
    try:
        config = run.run_config.judge
    except ConfigError:
        return None
    check = run.anchor_checks.select_related("anchor_run").first()
    if check is None and not config.anchor_run:
        return None
    return {
        "anchor_run": config.anchor_run,
        "source": SOURCE_WORDS[config.anchor_source],
        "sample": config.anchor_sample,
        "threshold": config.anchor_min_agreement,
        "check": check,
        "summary": summary(check) if check else "",
        "holds": bool(check and check.holds and held_by(run) is not None),
        "disagreeing_url": disagreeing_url(check) if check else None,
        "disagreeing_pairs": [p for p in check.pairs if p["comparison"] in set(check.disagreeing)] if check else [],
    }


def agreement_panel(limit: int = 2000) -> dict:
    """The "Judges" page's chart: each judge's agreement with its anchors over time (one trace per judge id,
    a point per check with its 95% interval; a check that held its run is drawn as a cross), as a panel of
    :mod:`runs.charts`' shape for ``runs/static/runs/charts.js``. Text is not yet escaped."""
    from runs.charts import COLORS

    checks = list(AnchorCheck.objects.filter(agreement__isnull=False).order_by("-created_at")[:limit])[::-1]
    by_judge: dict[str, list[AnchorCheck]] = defaultdict(list)
    for check in checks:
        by_judge[check.judge_id].append(check)
    traces = []
    for i, (judge_id, rows) in enumerate(sorted(by_judge.items())):
        color = COLORS[i % len(COLORS)]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": judge_id,
            "x": [c.created_at.isoformat() for c in rows], "y": [c.agreement for c in rows],
            "error_y": {"type": "data", "symmetric": False, "array": [c.high - c.agreement for c in rows],
                        "arrayminus": [c.agreement - c.low for c in rows], "color": color},
            "text": [f"run #{c.run_id} vs anchor run #{c.anchor_run_id} ({c.source}), n={c.n}, threshold "
                     f"{c.threshold:.0%}" for c in rows],
            "hovertemplate": "%{y:.0%} · %{text}<extra>%{fullData.name}</extra>",
            "line": {"color": color}, "marker": {"color": color, "size": 9,
                                                  "symbol": ["circle" if c.passed else "x" for c in rows]},
        })
    return {
        "id": "anchor_agreement", "title": "Judges: agreement with their anchors", "stage": "label",
        "group": "main", "x": "",
        "figure": {"data": traces, "layout": {
            "title": {"text": "Agreement with the anchor per check (95% CI; × = held the run)", "font": {"size": 14}},
            "xaxis": {"title": {"text": "checked at"}, "type": "date"},
            "yaxis": {"title": {"text": "agreement"}, "range": [0, 1.05], "tickformat": ".0%"},
            "margin": {"l": 55, "r": 15, "t": 40, "b": 45}, "height": 360,
            "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
        }},
    }
