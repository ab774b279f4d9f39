"""The run list as an experiment table: each run's final metrics and chosen hyper-parameters as columns,
computed in the database (one annotated query) so the table sorts and pages over every run.

Metrics come from what the stages stored: the evaluate stage's ``MetricPoint`` rows (win rate with its 95%
Wilson interval, length-controlled win rate with its bootstrap interval, mean reward-model score of the
reference and the tuned policy), the reward-model artifact's held-out accuracies (on AI labels and on human
labels), the last ``kl`` the policy stage logged, the judge's position consistency and the judge cost over the
run's judgments. Alignment with human auditors (share of
decisive audit labels the AI verdict agrees with, random stratum) is computed per shown run by
:func:`runs.audit.queries.alignment_counts`; sorting by it sorts in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, FloatField, JSONField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, NullIf

from runs.models import Artifact, JudgeCharge, Judgment, MetricPoint, Run


@dataclass(frozen=True)
class Column:
    """A sortable column of the run table.

    Attributes:
        key: the ``?sort=`` value and the annotation's name.
        label: the header.
        kind: ``metric`` (a final figure), ``param`` (a config value) or ``python`` (computed per row).
        fmt: how the cell is shown: ``pct`` (a share as %), ``num`` (3 significant decimals), ``money``, ``text``.
        help: the header's tooltip.
    """

    key: str
    label: str
    kind: str
    fmt: str = "num"
    help: str = ""


METRIC_COLUMNS = (
    Column("win_rate", "Win rate", "metric", "pct", "Tuned policy's win rate over the reference (judge, eval "
           "split), with its 95% Wilson interval"),
    Column("lc_win_rate", "LC win rate", "metric", "pct", "Length-controlled win rate: the win rate read at zero "
           "length difference (logistic model, Dubois et al. 2024), with its 95% bootstrap interval"),
    Column("rm_acc_ai", "RM acc. (AI)", "metric", "pct", "Reward model's held-out pairwise accuracy on AI labels"),
    Column("rm_acc_human", "RM acc. (human)", "metric", "pct", "Reward model's accuracy on human-labelled pairs"),
    Column("final_kl", "Final KL", "metric", "num", "Last KL to the reference the policy stage logged"),
    Column("reward_before", "Reward before", "metric", "num", "Mean reward-model score of the reference policy"),
    Column("reward_after", "Reward after", "metric", "num", "Mean reward-model score of the tuned policy"),
    Column("consistency", "Position consistency", "metric", "pct",
           "Share of judgments whose verdict held when the two responses swapped places"),
    Column("alignment", "Alignment", "python", "pct",
           "Share of decisive human audit labels (random stratum) the AI verdict agrees with; blank if not audited"),
    Column("cost", "Judge cost", "metric", "money", "Sum of the judge's per-call cost"),
)

#: Hyper-parameters shown as columns: (column key, config path).
PARAMS = (
    ("p_algorithm", "policy.algorithm", "Algorithm", "text"),
    ("p_beta", "policy.beta", "β (KL)", "num"),
    ("p_lr", "policy.learning_rate", "Policy LR", "num"),
    ("p_steps", "policy.steps", "Steps", "num"),
    ("p_policy", "generation.model", "Policy model", "text"),
    ("p_judge", "judge.model", "Judge", "text"),
    ("p_rm", "reward_model.base_model", "RM base", "text"),
)
PARAM_COLUMNS = tuple(Column(key, label, "param", fmt, f"config: {path}") for key, path, label, fmt in PARAMS)
COLUMNS = {c.key: c for c in METRIC_COLUMNS + PARAM_COLUMNS}
#: Non-summary sort keys the table offers (model fields).
PLAIN_SORTS = {"id": "pk", "name": "name", "created": "created_at", "finished": "finished_at", "status": "status"}


def _eval_metric(name: str):
    return Subquery(
        MetricPoint.objects.filter(run=OuterRef("pk"), stage="evaluate", name=name)
        .order_by("-step").values("value")[:1],
        output_field=FloatField(),
    )


# JSON values are read as JSON (not cast to numbers in SQL): a run whose stored value is not a number (an
# external run's artifact, an old config) then sorts apart instead of failing the whole page on PostgreSQL.


class _JSONScalar(JSONField):
    """A JSON value read back from a subquery: SQLite's JSON_EXTRACT already gives a number, PostgreSQL's
    ``->`` gives JSON text."""

    def from_db_value(self, value, expression, connection):
        if value is None or not isinstance(value, str | bytes | bytearray):
            return value
        try:
            return super().from_db_value(value, expression, connection)
        except (TypeError, ValueError):  # SQLite gives a JSON string unquoted
            return value


def _rm_metric(key: str):
    return Subquery(
        Artifact.objects.filter(run=OuterRef("pk"), kind=Artifact.Kind.REWARD_MODEL)
        .order_by("-created_at")
        .annotate(v=KeyTransform(key, "metrics"))
        .values("v")[:1],
        output_field=_JSONScalar(),
    )


def _config_value(path: str, numeric: bool):
    *parents, leaf = path.split(".")
    expr = "config"
    for part in parents:
        expr = KeyTransform(part, expr)
    return KeyTransform(leaf, expr) if numeric else KeyTextTransform(leaf, expr)


def with_summary(runs: QuerySet[Run]) -> QuerySet[Run]:
    """``runs`` annotated with every metric and hyper-parameter column of :data:`COLUMNS` (None where a run
    has no such figure), plus ``win_rate_low``/``win_rate_high``, ``lc_win_rate_low``/``lc_win_rate_high`` and
    the judgments' ``consistent``/``checked`` counts."""
    judgments = Judgment.objects.filter(comparison__run=OuterRef("pk")).order_by().values("comparison__run")
    consistency = judgments.annotate(
        c=Count("pk", filter=Q(position_consistent=True)), n=Count("pk", filter=Q(position_consistent__isnull=False))
    )
    annotations = {
        "win_rate": _eval_metric("win_rate"),
        "win_rate_low": _eval_metric("win_rate_low"),
        "win_rate_high": _eval_metric("win_rate_high"),
        "lc_win_rate": _eval_metric("lc_win_rate"),
        "lc_win_rate_low": _eval_metric("lc_win_rate_low"),
        "lc_win_rate_high": _eval_metric("lc_win_rate_high"),
        "reward_before": _eval_metric("reward_reference_mean"),
        "reward_after": _eval_metric("reward_tuned_mean"),
        "rm_acc_ai": _rm_metric("eval_accuracy"),
        "rm_acc_human": _rm_metric("human_accuracy"),
        "final_kl": Subquery(
            MetricPoint.objects.filter(run=OuterRef("pk"), stage="policy", name__in=("kl", "objective/kl"))
            .order_by("-step").values("value")[:1],
            output_field=FloatField(),
        ),
        "consistent": Subquery(consistency.values("c")[:1]),
        "checked": Subquery(consistency.values("n")[:1]),
        # the cost ledger (every paid judge call); runs judged before it existed: their judgments' cost
        "cost": Coalesce(
            Subquery(
                JudgeCharge.objects.filter(run=OuterRef("pk")).order_by().values("run")
                .annotate(s=Sum("cost")).values("s")[:1],
                output_field=FloatField(),
            ),
            Subquery(judgments.annotate(s=Sum("cost")).values("s")[:1], output_field=FloatField()),
        ),
    }
    annotations["consistency"] = Cast(F("consistent"), FloatField()) / NullIf(
        Coalesce(F("checked"), Value(0)), Value(0), output_field=FloatField()
    )
    for key, path, _label, fmt in PARAMS:
        annotations[key] = _config_value(path, numeric=fmt == "num")
    return runs.annotate(**{k: v for k, v in annotations.items() if k != "consistency"}).annotate(
        consistency=annotations["consistency"]
    )


def sort_runs(runs: QuerySet[Run], sort: str) -> QuerySet[Run] | list[Run]:
    """Order ``runs`` (annotated by :func:`with_summary`) by ``sort``: a column key or a plain key
    (``id``, ``name``, ``created``…), ``-`` in front for descending; runs without a value come last either
    way. An unknown key keeps the newest first. ``alignment`` is computed per run and sorted in Python (a
    list comes back)."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "alignment":
        rows = list(runs)
        attach_alignment(rows)
        present = [r for r in rows if r.alignment is not None]
        present.sort(key=lambda r: r.alignment, reverse=descending)
        return present + [r for r in rows if r.alignment is None]
    field = PLAIN_SORTS.get(key) or (key if key in COLUMNS else None)
    if field is None:
        return runs.order_by("-created_at")
    order = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
    return runs.order_by(order, "-pk")


def attach_alignment(runs) -> None:
    """Set ``run.alignment`` (share of decisive random-stratum audit labels the AI verdict agrees with) and
    ``run.alignment_n`` on each run; None where no such label exists."""
    from runs.audit.queries import alignment_counts
    from runs.models import AuditItem

    runs = [r for r in runs if not hasattr(r, "alignment")]
    audited = set(AuditItem.objects.filter(run__in=[r.pk for r in runs]).values_list("run_id", flat=True))
    for run in runs:
        agree, n = alignment_counts(run) if run.pk in audited else (0, 0)
        run.alignment_n = n
        run.alignment = agree / n if n else None
