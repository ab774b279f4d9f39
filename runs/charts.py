"""Figure data for the run pages, built in Python from rows aggregated in the database.

Metric curves are data-driven: whatever ``MetricPoint`` names a run's stages wrote are plotted; the names TRL
logs (``loss``, ``eval_accuracy``, ``reward``/``reward_std``, ``kl``, ``entropy``, ``completions/mean_length``…)
are placed in panels that belong together, any other curve gets a panel of its own under "more metrics", and
metrics with a single value (the evaluate stage's win rate, a summary loss) go in a table instead of a chart.
Long curves are averaged into at most :data:`MAX_POINTS` buckets of steps by the database, so a run with
tens of thousands of points still answers quickly. Several runs overlay in one figure: each run has its own
colour (and legend group, so one click on the legend hides or shows a run), each metric its own dash style.
Every step-based trace carries the wall-clock minutes since its run's first metric in ``customdata``, so the
page can draw it against time instead of steps.

Figures are plain plotly JSON (``{"data": [...], "layout": {...}}``) drawn by plotly.js in the browser.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Avg, Case, Count, F, FloatField, IntegerField, Max, Min, Q, Value, When
from django.db.models.functions import Floor, Ln

from constitutions.models import Principle
from rlaif_site.untrusted import plotly_safe
from runs.models import Judgment, MetricPoint, Run, StageRun
from runs.stages.registry import JUDGING_STAGES, pipeline_position

#: At most this many points per curve; longer stages are averaged over buckets of consecutive steps.
MAX_POINTS = 400
#: How long computed figures stay cached (they are also keyed on the runs' stage states).
CACHE_SECONDS = 300
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
BAND_COLORS = ("rgba(51,85,204,0.15)", "rgba(198,40,40,0.15)", "rgba(26,127,55,0.15)", "rgba(178,106,0,0.15)")


@dataclass
class PanelSpec:
    """A panel of known metrics: ``match(stage, name)`` says whether a series belongs to it."""

    id: str
    title: str
    stage: str
    names: tuple[str, ...] = ()
    pattern: str | None = None
    y_title: str = ""

    def match(self, stage: str, name: str) -> bool:
        if stage != self.stage:
            return False
        return name in self.names or bool(self.pattern and re.fullmatch(self.pattern, name))


#: Known metrics, in display order. Reward mean ± std is drawn specially (:func:`_reward_panel`).
PANELS: list[PanelSpec] = [
    PanelSpec("rm_loss", "Reward model: loss", "reward_model", ("loss", "train_loss", "eval_loss"), y_title="loss"),
    PanelSpec("rm_accuracy", "Reward model: pairwise accuracy", "reward_model",
              pattern=r"(eval_)?(\w+_)?accuracy", y_title="accuracy"),
    PanelSpec("policy_reward", "Policy: reward (mean ± std)", "policy",
              ("reward", "rewards/chosen", "rewards/rejected", "rewards/margins", "judge_reward", "judge_margin"),
              pattern=r"rewards/[^/]+/mean", y_title="reward"),
    PanelSpec("policy_judge_failed", "Policy: failed judgments of the rollouts (judge as reward)", "policy",
              ("judge_failed",), y_title="judgments"),
    PanelSpec("policy_kl", "Policy: KL to the reference", "policy", ("kl", "objective/kl"), y_title="KL"),
    PanelSpec("policy_loss", "Policy: loss", "policy", ("loss", "policy_loss"), y_title="loss"),
    PanelSpec("policy_entropy", "Policy: entropy", "policy", ("entropy", "objective/entropy"), y_title="nats"),
    PanelSpec("policy_length", "Policy: completion length", "policy",
              ("completions/mean_length", "completions/min_length", "completions/max_length", "completion_length"),
              y_title="tokens"),
]
#: Series drawn as the ± band of another: std name -> mean name.
BANDS = {"reward_std": "reward"}
BANDS_PATTERN = re.compile(r"rewards/([^/]+)/std")
STAGE_LABELS = dict(Run._meta.get_field("current_stage").choices)


@dataclass
class Series:
    run_id: int
    stage: str
    name: str
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    #: minutes since the run's first metric point, per point (the last write in a bucket)
    minutes: list[float] = field(default_factory=list)


# --- database ----------------------------------------------------------------------------------------


def stage_bucket_widths(run_id: int) -> dict[str, int]:
    """Per stage, how many consecutive steps one plotted point averages (1 = every step): one query."""
    widths = {}
    rows = MetricPoint.objects.filter(run_id=run_id).values("stage").annotate(lo=Min("step"), hi=Max("step"))
    for row in rows:
        span = row["hi"] - row["lo"] + 1
        widths[row["stage"]] = max(1, math.ceil(span / MAX_POINTS))
    return widths


def load_series(run_id: int) -> list[Series]:
    """Every metric curve of a run, bucket-averaged in the database (two queries)."""
    widths = stage_bucket_widths(run_id)
    if not widths:
        return []
    points = MetricPoint.objects.filter(run_id=run_id)
    start = points.aggregate(t=Min("created_at"))["t"]
    if all(w == 1 for w in widths.values()):
        rows = points.order_by("stage", "name", "step").values_list("stage", "name", "step", "value", "created_at")
    else:
        bucket = Case(
            *[When(stage=stage, then=F("step") / Value(w)) for stage, w in widths.items()],
            output_field=IntegerField(),
        )
        rows = (
            points.annotate(bucket=bucket)
            .values("stage", "name", "bucket")
            .annotate(x=Avg("step"), y=Avg("value"), t=Max("created_at"))
            .order_by("stage", "name", "bucket")
            .values_list("stage", "name", "x", "y", "t")
        )
    series: dict[tuple[str, str], Series] = {}
    for stage, name, step, value, at in rows:
        s = series.get((stage, name))
        if s is None:
            s = series[(stage, name)] = Series(run_id, stage, name)
        s.steps.append(step)
        s.values.append(value)
        s.minutes.append(round((at - start).total_seconds() / 60, 4) if at and start else None)
    return list(series.values())


# --- figures -----------------------------------------------------------------------------------------


def _layout(title: str, x_title: str = "step", y_title: str = "", **extra) -> dict:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "margin": {"l": 55, "r": 15, "t": 40, "b": 45},
        "height": 300,
        # below the x-axis title, whatever room automargin gives the tick labels (plotly.js ≥ 2.26)
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
        **extra,
    }


def _trace_name(name: str, run_id: int, overlay: bool) -> str:
    return f"#{run_id} {name}" if overlay else name


def _line(s: Series, run_index: int, overlay: bool, color_index: int) -> dict:
    """A metric curve. Alone: coloured by metric. Overlaid: coloured by run (``run_index``), dashed by metric,
    and grouped by run in the legend so one click there hides or shows the whole run."""
    return {
        "type": "scatter", "mode": "lines+markers" if len(s.steps) < 30 else "lines",
        "x": s.steps, "y": s.values, "customdata": s.minutes, "name": _trace_name(s.name, s.run_id, overlay),
        "line": {"dash": DASHES[color_index % len(DASHES)] if overlay else "solid"},
        "legendgroup": f"run-{s.run_id}" if overlay else f"{s.run_id}-{s.name}",
        "marker": {"size": 5}, "meta": {"run": s.run_id, "stage": s.stage, "metric": s.name},
        "_color": run_index if overlay else color_index,
    }


def _band(mean: Series, std: Series, run_index: int, overlay: bool, color_index: int) -> list[dict]:
    """Two traces filling mean − std … mean + std, matched by step."""
    std_at = dict(zip(std.steps, std.values, strict=False))
    xs = [x for x in mean.steps if x in std_at]
    if not xs:
        return []
    mean_at = dict(zip(mean.steps, mean.values, strict=False))
    upper = [mean_at[x] + std_at[x] for x in xs]
    lower = [mean_at[x] - std_at[x] for x in xs]
    color = BAND_COLORS[(run_index if overlay else color_index) % len(BAND_COLORS)]
    group = f"run-{mean.run_id}" if overlay else f"{mean.run_id}-{mean.name}"
    minutes_at = dict(zip(mean.steps, mean.minutes, strict=False))
    minutes = [minutes_at.get(x) for x in xs]
    return [
        {"type": "scatter", "mode": "lines", "x": xs, "y": upper, "customdata": minutes, "line": {"width": 0},
         "showlegend": False, "hoverinfo": "skip", "legendgroup": group, "meta": {"band": "upper"}},
        {"type": "scatter", "mode": "lines", "x": xs, "y": lower, "customdata": minutes, "line": {"width": 0},
         "fill": "tonexty", "fillcolor": color, "name": _trace_name(f"{mean.name} ± std", mean.run_id, overlay),
         "legendgroup": group, "hoverinfo": "skip", "meta": {"band": "lower"}},
    ]


def _std_partner(name: str) -> str | None:
    if name in BANDS:
        return BANDS[name]
    m = BANDS_PATTERN.fullmatch(name)
    return f"rewards/{m.group(1)}/mean" if m else None


def metric_panels(run_ids: Sequence[int]) -> list[dict]:
    """Panels of metric curves for one or more runs (overlaid when several); see :func:`metric_data`."""
    return metric_data(run_ids)[0]


def metric_data(run_ids: Sequence[int]) -> tuple[list[dict], list[dict]]:
    """Panels of metric curves for one or more runs (overlaid when several), and the single-value metrics
    that are not curves: ``(panels, scalars)``, each scalar ``{"run", "stage", "name", "step", "value"}``.

    A metric outside the known panels whose every run logged it once is a scalar (a chart of one point
    says nothing a table cell does not)."""
    overlay = len(run_ids) > 1
    all_series: list[tuple[int, Series]] = []
    for index, run_id in enumerate(run_ids):
        all_series.extend((index, s) for s in load_series(run_id))
    by_key = {(s.run_id, s.stage, s.name): s for _, s in all_series}
    used: set[tuple[int, str, str]] = _redundant_reward_series(by_key)
    panels = []
    for spec in PANELS:
        traces: list[dict] = []
        names: list[str] = []
        for run_index, s in all_series:
            if not spec.match(s.stage, s.name) or (s.run_id, s.stage, s.name) in used:
                continue
            if s.name not in names:
                names.append(s.name)
            color = names.index(s.name)
            partner_name = next((std for std, mean in BANDS.items() if mean == s.name), None)
            m = re.fullmatch(r"rewards/([^/]+)/mean", s.name)
            if m:
                partner_name = f"rewards/{m.group(1)}/std"
            partner = by_key.get((s.run_id, s.stage, partner_name)) if partner_name else None
            if partner is not None:
                traces.extend(_band(s, partner, run_index, overlay, color))
                used.add((s.run_id, s.stage, partner.name))
            traces.append(_line(s, run_index, overlay, color))
            used.add((s.run_id, s.stage, s.name))
        if traces:
            panels.append(_panel(spec.id, spec.title, spec.stage, "main", traces, y_title=spec.y_title))
    reward_vs_kl = _reward_vs_kl(all_series, overlay)
    if reward_vs_kl:
        panels.append(reward_vs_kl)
    # Everything else: one panel per stage and metric family ("clip_ratio/low_mean" joins "clip_ratio/…").
    families: dict[tuple[str, str], list[tuple[int, Series]]] = defaultdict(list)
    for run_index, s in all_series:
        key = (s.run_id, s.stage, s.name)
        if key in used or _std_partner(s.name) and (s.run_id, s.stage, _std_partner(s.name)) in by_key:
            continue
        families[(s.stage, s.name.split("/")[0])].append((run_index, s))
    scalars: list[dict] = []
    for (stage, family), members in sorted(families.items(), key=lambda kv: _stage_order(kv[0][0]) + kv[0][1]):
        if all(len(s.steps) == 1 for _, s in members):
            scalars.extend({"run": s.run_id, "stage": stage, "stage_label": STAGE_LABELS.get(stage, stage),
                            "name": s.name, "step": s.steps[0], "value": s.values[0]} for _, s in members)
            continue
        names = list(dict.fromkeys(s.name for _, s in members))
        traces = [_line(s, run_index, overlay, names.index(s.name)) for run_index, s in members]
        title = f"{STAGE_LABELS.get(stage, stage)}: {family}"
        panels.append(_panel(f"{stage}-{family}", title, stage, "more", traces, y_title=family))
    return panels, scalars


def _redundant_reward_series(by_key: dict[tuple[int, str, str], Series]) -> set[tuple[int, str, str]]:
    """Keys of ``rewards/<function>/mean`` and ``…/std`` series that repeat ``reward``/``reward_std``: TRL's
    GRPO/RLOO trainers log both, and with a single reward function they are the same numbers."""
    per_function: dict[int, list[Series]] = defaultdict(list)
    for (run_id, stage, name), s in by_key.items():
        if stage == "policy" and re.fullmatch(r"rewards/[^/]+/mean", name):
            per_function[run_id].append(s)
    redundant = set()
    for run_id, means in per_function.items():
        total = by_key.get((run_id, "policy", "reward"))
        if len(means) != 1 or total is None:
            continue
        (mean,) = means
        if mean.steps == total.steps and all(
            math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(mean.values, total.values, strict=True)
        ):
            redundant.add((run_id, "policy", mean.name))
            redundant.add((run_id, "policy", mean.name[: -len("mean")] + "std"))
    return redundant


def _stage_order(stage: str) -> str:
    return f"{pipeline_position(stage):02d}"


def _reward_vs_kl(all_series: Iterable[tuple[int, Series]], overlay: bool) -> dict | None:
    """Reward against KL per step of the policy stage: the trade-off the KL coefficient controls."""
    by_run: dict[int, dict[str, Series]] = defaultdict(dict)
    run_index_of: dict[int, int] = {}
    for run_index, s in all_series:
        if s.stage == "policy" and s.name in ("reward", "kl"):
            by_run[s.run_id][s.name] = s
            run_index_of[s.run_id] = run_index
    traces = []
    symbols = ("circle", "square", "diamond", "triangle-up", "x")
    for run_id, series in by_run.items():
        if "reward" not in series or "kl" not in series:
            continue
        kl_at = dict(zip(series["kl"].steps, series["kl"].values, strict=False))
        pairs = [(kl_at[x], y, x) for x, y in zip(series["reward"].steps, series["reward"].values, strict=False)
                 if x in kl_at]
        if not pairs:
            continue
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"#{run_id}" if overlay else "steps",
            "x": [p[0] for p in pairs], "y": [p[1] for p in pairs], "text": [f"step {p[2]:g}" for p in pairs],
            "marker": {"color": [p[2] for p in pairs], "colorscale": "Viridis", "size": 7,
                       "symbol": symbols[run_index_of[run_id] % len(symbols)],
                       "showscale": len(traces) == 0, "colorbar": {"title": {"text": "step"}}},
        })
    if not traces:
        return None
    return _panel("reward_vs_kl", "Policy: reward vs KL", "policy", "main", traces, x_title="KL", y_title="reward")


def _panel(panel_id: str, title: str, stage: str, group: str, traces: list[dict], x_title: str = "step",
           y_title: str = "", **layout) -> dict:
    for t in traces:
        color = t.pop("_color", None)
        if color is not None:
            t["line"]["color"] = COLORS[color % len(COLORS)]
            t["marker"]["color"] = COLORS[color % len(COLORS)]
    return {"id": panel_id, "title": title, "stage": stage, "group": group, "x": "step" if x_title == "step" else "",
            "figure": {"data": traces, "layout": _layout(title, x_title, y_title, **layout)}}


COLORS = ("#3355cc", "#c62828", "#1a7f37", "#b26a00", "#6a3d9a", "#0097a7", "#8d6e63", "#d81b60")
VERDICT_COLORS = {"A": "#3355cc", "B": "#c62828", "tie": "#9e9e9e", "": "#212121"}
VERDICT_NAMES = {"A": "A preferred", "B": "B preferred", "tie": "tie", "": "failed"}


# --- judge figures -----------------------------------------------------------------------------------

#: Latency histogram bins per e-fold of latency (log-spaced bins, each ~10.5% wider than the last).
LATENCY_BINS_PER_E = 10


def judge_rows(run_id: int) -> list[dict]:
    """One scan of a run's judgments, grouped by principle, verdict and log-latency bin, with the number of
    position-consistent and two-order judgments in each group."""
    latency_bin = Case(
        When(latency_ms__gt=0, then=Floor(Ln(F("latency_ms")) * Value(float(LATENCY_BINS_PER_E)))),
        default=None, output_field=FloatField(),
    )
    return list(
        Judgment.objects.filter(comparison__run_id=run_id)
        .annotate(latency_bin=latency_bin)
        .values("principle_id", "verdict", "latency_bin")
        .annotate(n=Count("id"), consistent=Count("id", filter=Q(position_consistent=True)),
                  checked=Count("id", filter=Q(position_consistent__isnull=False)))
        .order_by()
    )


def judge_panels(run_ids: Sequence[int]) -> list[dict]:
    """Verdicts and position consistency per principle, and the judge's latency histogram (one scan per run)."""
    overlay = len(run_ids) > 1
    verdict_counts: dict[str, dict[str, int]] = defaultdict(dict)
    consistency_traces = []
    latency_traces = []
    for run_index, run_id in enumerate(run_ids):
        rows = judge_rows(run_id)
        if not rows:
            continue
        names = dict(Principle.objects.filter(pk__in={r["principle_id"] for r in rows}).values_list("pk", "name"))
        prefix = f"#{run_id} · " if overlay else ""
        per_principle: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        latency: dict[int, int] = defaultdict(int)
        for row in rows:
            principle = prefix + names.get(row["principle_id"], "(no principle)")
            counts = verdict_counts[row["verdict"] or ""]
            counts[principle] = counts.get(principle, 0) + row["n"]
            per_principle[principle][0] += row["consistent"]
            per_principle[principle][1] += row["checked"]
            if row["latency_bin"] is not None:
                latency[int(row["latency_bin"])] += row["n"]
        checked = {p: c for p, c in sorted(per_principle.items()) if c[1]}
        if checked:
            consistency_traces.append({
                "type": "bar", "name": f"#{run_id}" if overlay else "position consistency",
                "x": list(checked), "y": [c[0] / c[1] for c in checked.values()],
                "text": [f"{c[0]}/{c[1]}" for c in checked.values()], "textposition": "auto",
                "marker": {"color": COLORS[run_index % len(COLORS)]},
            })
        if latency:
            bins = sorted(latency)
            latency_traces.append({
                "type": "bar", "name": f"#{run_id}" if overlay else "calls",
                "x": [round(math.exp((b + 0.5) / LATENCY_BINS_PER_E), 1) for b in bins],
                "width": [math.exp((b + 1) / LATENCY_BINS_PER_E) - math.exp(b / LATENCY_BINS_PER_E) for b in bins],
                "y": [latency[b] for b in bins],
                "opacity": 0.6 if overlay else 1.0, "marker": {"color": COLORS[run_index % len(COLORS)]},
            })
    panels = []
    if verdict_counts:
        traces = []
        for verdict in [v for v in ("A", "B", "tie", "") if v in verdict_counts]:
            counts = dict(sorted(verdict_counts[verdict].items()))
            traces.append({"type": "bar", "name": VERDICT_NAMES[verdict], "x": list(counts), "y": list(counts.values()),
                           "marker": {"color": VERDICT_COLORS[verdict]}})
        panels.append(_panel("judge_verdicts", "Judge: verdicts per principle", "label", "main", traces,
                             x_title="principle", y_title="judgments", barmode="stack"))
    if consistency_traces:
        panels.append(_panel("judge_consistency", "Judge: position consistency per principle", "label", "main",
                             consistency_traces, x_title="principle", y_title="share consistent",
                             barmode="group", yaxis={"range": [0, 1.05], "title": {"text": "share consistent"}}))
    if latency_traces:
        panels.append(_panel("judge_latency", "Judge: latency per call", "label", "main", latency_traces,
                             x_title="latency (ms; bins ~10% wide)", y_title="judgments", barmode="overlay"))
    return panels


def data_version(runs: Sequence[Run], stages: Sequence[str] | None = None) -> str:
    """A key that changes whenever a stage of the runs writes (progress, heartbeat, status, attempt): figures
    built from a run's rows can be cached under it (one query).

    Args:
        stages: only these stages' writes count (None: all).
    """
    qs = StageRun.objects.filter(run__in=runs)
    if stages is not None:
        qs = qs.filter(stage__in=stages)
    rows = qs.order_by("run_id", "stage").values_list(
        "run_id", "stage", "status", "attempt", "progress_done", "heartbeat_at", "finished_at"
    )
    identity = [(r.pk, r.created_at) for r in runs]
    return hashlib.sha1(repr((identity, list(rows))).encode()).hexdigest()


def chart_data(run_ids: Sequence[int]) -> dict:
    """All panels for ``run_ids`` (the first is the run whose page it is), as built, text not yet escaped:
    ``{"runs": [{"id", "name", "color"}], "panels": [...], "scalars": [...]}``.

    Metric and judge figures are cached for :data:`CACHE_SECONDS` under :func:`data_version`, so a finished
    run's figures are computed once and a running one's at most once per progress write.
    """
    runs = {r.pk: r for r in Run.objects.filter(pk__in=run_ids).only("pk", "name", "created_at")}
    ids = [i for i in run_ids if i in runs]
    selected = [runs[i] for i in ids]
    metric_key = f"runs:metric-data:{data_version(selected)}"
    cached = cache.get(metric_key)
    if cached is None:
        cached = metric_data(ids)
        cache.set(metric_key, cached, CACHE_SECONDS)
    metric, scalars = cached
    judge_key = f"runs:judge-panels:{data_version(selected, JUDGING_STAGES)}"
    judge = cache.get(judge_key)
    if judge is None:
        judge = judge_panels(ids)
        cache.set(judge_key, judge, CACHE_SECONDS)
    return {"runs": [{"id": i, "name": runs[i].name, "color": COLORS[n % len(COLORS)]} for n, i in enumerate(ids)],
            "panels": metric + judge, "scalars": scalars}


def run_charts(run_ids: Sequence[int]) -> dict:
    """:func:`chart_data` for the browser: panels carry user text (run and principle names) that plotly
    would render as HTML, so every string in them is escaped; scalars are shown as text and stay as they are."""
    data = chart_data(run_ids)
    data["panels"] = plotly_safe(data["panels"])
    return data
