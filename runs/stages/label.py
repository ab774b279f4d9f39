"""The label stage: the run's AI judge labels its train comparisons under its pinned constitution version.

Thin: it works out which (comparison, principle) units lack a judgment by this judge, streams them to
:func:`training.labeling.label_tasks` and bulk-writes each batch of :class:`~runs.models.Judgment` rows as it
comes. A resumed stage skips what is stored (the unique constraint on comparison × principle × judge makes a
double write impossible) and judges again the units whose earlier judgment failed, updating those rows.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, Sum

from runs.models import Comparison, Judgment, Run
from training.config import RunConfig
from training.judges import JudgedPair, JudgeTask, build_judge, judge_id_for
from training.labeling import label_tasks, select_principles

#: Comparisons read from the database at a time while streaming tasks.
READ_CHUNK = 200
#: The stage gives up when this many judgments in a row failed before any succeeded (a dead endpoint).
FAIL_FAST_AFTER = 16

JUDGMENT_FIELDS = [
    "p_a_ab",
    "p_a_ba",
    "p_a",
    "verdict",
    "position_consistent",
    "rationale",
    "raw_outputs",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "error",
    "attempts",
]


class JudgeUnavailable(RuntimeError):
    """Every judgment so far failed: the judge is misconfigured or down (the failures are stored and will
    be judged again on resume)."""


def run(stage_run, reporter) -> None:
    """The label stage: judge the run's ``purpose="train"`` comparisons.

    Raises:
        ValueError: the run has no train comparisons (run the generate stage first).
        JudgeUnavailable: every judgment failed (they are stored; resuming judges them again).
    """
    run_row = stage_run.run
    comparisons = Comparison.objects.filter(run=run_row, purpose="train")
    if not comparisons.exists():
        raise ValueError(f"run {run_row.pk} has no comparisons to label; run the generate stage first")
    counts = judge_comparisons(run_row, comparisons, reporter)
    if counts["done"] and counts["failed"] == counts["done"] and not counts["skipped"]:
        raise JudgeUnavailable(
            f"every one of the {counts['done']} judgments failed; see their errors in the pair browser"
        )
    reporter.log(
        f"label: {counts['done']} judged ({counts['failed']} failed), {counts['skipped']} already stored"
        + ("; stopped at the budget cap" if counts.get("budget_exhausted") else "")
    )


def _judgment(run_judge_id: str, pair: JudgedPair) -> Judgment:
    comparison_id, principle_id = pair.key
    return Judgment(
        comparison_id=comparison_id,
        principle_id=principle_id,
        judge_id=run_judge_id,
        p_a_ab=pair.p_a_ab,
        p_a_ba=pair.p_a_ba,
        p_a=pair.p_a,
        verdict=pair.verdict,
        position_consistent=pair.position_consistent,
        rationale=pair.rationale,
        raw_outputs=pair.raw_outputs,
        latency_ms=pair.latency_ms,
        prompt_tokens=pair.prompt_tokens,
        completion_tokens=pair.completion_tokens,
        cost=pair.cost,
        error=pair.error,
        attempts=pair.attempts,
    )


def judge_comparisons(run: Run, comparisons: QuerySet, reporter, *, progress_offset: int = 0) -> dict:
    """Label ``comparisons`` of ``run`` with its judge config and pinned constitution version.

    Per comparison the principle(s) come from :func:`training.labeling.select_principles`, drawn by what
    the comparison compares (:func:`_sampling_keys`), so a resume or a rerun picks the same ones. Units
    already judged successfully by this judge are skipped; units whose stored judgment failed are judged
    again and their rows updated.

    Args:
        run: the run (its ``config["judge"]`` and ``constitution_version``).
        comparisons: a queryset of the run's comparisons.
        reporter: progress ``progress_offset + units finished`` of ``progress_offset + units``.

    Returns:
        ``{"done": judged now, "failed": of those, failed, "skipped": already stored, "total": units,
        "budget_exhausted": bool}``.

    Raises:
        JudgeUnavailable: the first judgments all failed (stored; resume judges them again).
        training.progress.Cancelled: the reporter asked to stop (finished batches are stored).
    """
    config = RunConfig.from_dict(run.config).judge
    version = run.constitution_version
    principles = version.principle_dicts()
    judge_id = judge_id_for(config)
    try:
        units = [
            (cid, p)
            for cid, key in _sampling_keys(comparisons)
            for p in select_principles(principles, key, mode=config.principle_sampling, seed=config.seed)
        ]
    except ValueError as exc:
        raise ValueError(f"{version}: {exc}") from exc
    stored = Judgment.objects.filter(comparison__in=comparisons.values("pk"), judge_id=judge_id)
    ok_keys, failed_rows = set(), {}
    for pk, cid, pid, verdict in stored.values_list("pk", "comparison_id", "principle_id", "verdict"):
        if verdict:
            ok_keys.add((cid, pid))
        else:
            failed_rows[(cid, pid)] = pk
    pending = [(cid, p) for cid, p in units if (cid, p["id"]) not in ok_keys]
    skipped = len(units) - len(pending)
    total = progress_offset + len(units)
    reporter.progress(progress_offset + skipped, total, "judging")
    counts = {"done": 0, "failed": 0, "skipped": skipped, "total": len(units), "budget_exhausted": False}
    if not pending:
        return counts

    if config.backend != "openai":
        from runs.stages import training_support

        training_support.ensure_models(RunConfig.from_dict(run.config), reporter, [config.model])
    judge = build_judge(config, settings.MODELS_DIR)
    spent = Judgment.objects.filter(comparison__run=run, judge_id=judge_id).aggregate(s=Sum("cost"))["s"] or 0.0
    reporter.log(f"label: {len(pending)} to judge with {judge_id} ({skipped} already stored)")
    from runs.judge_cache import DbJudgeCache

    try:
        for pairs in label_tasks(
            judge,
            _tasks(pending),
            template=version.judge_template,
            examples=version.few_shot_examples or [],
            config=config,
            reporter=reporter,
            cache=DbJudgeCache(judge_id),
            batch_size=max(32, 2 * config.concurrency),
            progress_offset=progress_offset + skipped,
            progress_total=total,
            spent=spent,
        ):
            _write(judge_id, pairs, failed_rows)
            counts["done"] += len(pairs)
            counts["failed"] += sum(1 for p in pairs if not p.verdict)
            if counts["failed"] == counts["done"] >= FAIL_FAST_AFTER:
                first_error = next((p.error for p in pairs if p.error), "unknown error")
                raise JudgeUnavailable(
                    f"the judge {judge_id} failed on all {counts['done']} judgments so far: {first_error}"
                )
    finally:
        close = getattr(judge, "close", None)
        if close is not None:
            close()
    counts["budget_exhausted"] = counts["done"] < len(pending)
    return counts


def _sampling_keys(comparisons: QuerySet) -> list[tuple[int, str]]:
    """``(comparison id, key)`` in id order; the key draws the comparison's principle. It names what is
    compared, not the row: the prompt's content hash and each side's source and sample index. So a resume
    draws the same principles, and so does another run of the same seeds on the same prompts."""
    rows = comparisons.order_by("pk").values_list(
        "pk", "prompt__content_hash", "completion_a__source", "completion_a__sample_index",
        "completion_b__source", "completion_b__sample_index",
    )
    return [(pk, ":".join(map(str, key))) for pk, *key in rows]


def _tasks(pending) -> Iterator[JudgeTask]:
    """Stream the pending units as judge tasks, reading comparisons (with prompt and completions) in chunks."""
    for start in range(0, len(pending), READ_CHUNK):
        chunk = pending[start : start + READ_CHUNK]
        rows = Comparison.objects.select_related("prompt", "completion_a", "completion_b").in_bulk(
            sorted({cid for cid, _ in chunk})
        )
        for cid, principle in chunk:
            comparison = rows[cid]
            yield JudgeTask(
                key=(cid, principle["id"]),
                conversation=comparison.prompt.conversation,
                response_a=comparison.completion_a.text,
                response_b=comparison.completion_b.text,
                principle=principle["comparison"],
            )


def _write(judge_id: str, pairs: list[JudgedPair], failed_rows: dict) -> None:
    """Insert new judgments and overwrite earlier failed ones, in one transaction."""
    new, retried = [], []
    for pair in pairs:
        row = _judgment(judge_id, pair)
        pk = failed_rows.get(pair.key)
        if pk is None:
            new.append(row)
        else:
            row.pk = pk
            retried.append(row)
    with transaction.atomic():
        Judgment.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        if retried:
            Judgment.objects.bulk_update(retried, JUDGMENT_FIELDS, batch_size=200)
