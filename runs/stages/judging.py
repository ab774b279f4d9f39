"""Judging a run's comparisons with its AI judge: the work the label stage (train comparisons) and the
evaluate stage (tuned against reference answers) share.

:func:`judge_comparisons` works out which (comparison, principle) units lack a judgment by this judge,
streams them to :func:`training.labeling.label_tasks` and bulk-writes each batch of
:class:`~runs.models.Judgment` rows as it comes. A second call skips what is stored (the unique constraint
on comparison × principle × judge makes a double write impossible) and judges again the units whose earlier
judgment failed, updating those rows. :func:`rejudge` judges another run's comparisons in memory, storing no
judgment (the drift guard's anchor check, :mod:`runs.drift`).

With a panel of judges (``judge.panel``, :mod:`training.panel`) each judge of the panel labels every unit in
turn, the same way, its judgments stored as votes (``Judgment.panel_vote``) under its own judge id, with its
own budget, cost ledger and request cache; then each unit every judge answered gets the panel's verdict
(:func:`training.panel.aggregate`), stored as the unit's judgment under the panel's judge id. A resume skips
what every judge stored, judges the failed votes again and aggregates again the units whose verdict failed.

A paid judge (:attr:`~training.judges.base.Judge.paid`: the ``openai`` backend) is given a
:class:`~training.judges.budget.Ledger`: each call is reserved against ``judge.budget`` before it is made,
and each paid call and each usable answer is persisted as it arrives (:func:`runs.judge_cache.persist_events`:
a ``JudgeCharge`` row, a request-cache entry), so the spend never passes the cap, the ledger counts every
paid attempt, and a stage stopped mid-batch (an RQ timeout) loses nothing it paid for: its resume is
answered from the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from runs.judge_cache import DbJudgeCache, persist_events, spent_by
from runs.models import Comparison, Judgment, Run
from training import panel
from training.config import JudgeConfig
from training.judges import Judge, JudgedPair, JudgeTask, build_judge, judge_backend, judge_id_for
from training.judges.budget import BUDGET_REFUSED, Ledger
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
#: Units aggregated into panel verdicts at a time.
PANEL_CHUNK = 1000


class JudgeUnavailable(RuntimeError):
    """Every judgment so far failed, or the endpoint stopped answering: the judge is misconfigured or down
    (the failures are stored and will be judged again on resume)."""


def _judgment(run_judge_id: str, pair: JudgedPair, *, vote: bool = False) -> Judgment:
    comparison_id, principle_id = pair.key
    return Judgment(
        comparison_id=comparison_id,
        principle_id=principle_id,
        judge_id=run_judge_id,
        panel_vote=vote,
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


@dataclass
class JudgeSession:
    """A run's judge, built for a stage, with its request cache and (a paid judge) its cost ledger.

    Attributes:
        run: the run whose judge it is (its charges are recorded on it).
        judge: the backend (:func:`training.judges.build_judge`), its ``ledger`` set when it is paid.
        judge_id: what judgments, cache entries and charges are stored under.
        cache: the request cache in the database (:class:`runs.judge_cache.DbJudgeCache`).
        ledger: the budget and record of paid attempts, or None for a free judge.
    """

    run: Run
    judge: Judge
    judge_id: str
    cache: DbJudgeCache
    ledger: Ledger | None = None

    @property
    def spent(self) -> float:
        """What the run has paid this judge so far (0 for a free judge)."""
        return self.ledger.spent if self.ledger is not None else 0.0

    def persist(self) -> None:
        """Write the ledger's queued charges and answers (a paid judge); call often, from the stage's thread."""
        if self.ledger is not None:
            persist_events(self.run, self.judge_id, self.ledger.drain(), self.cache)


def open_judge(run: Run, reporter, config: JudgeConfig | None = None) -> JudgeSession:
    """Build ``run``'s judge for a stage: its local model fetched or converted first, and a paid judge given a
    :class:`~training.judges.budget.Ledger` holding ``judge.budget`` less what the run already paid it.

    The label and evaluate stages (:func:`judge_comparisons`) and the policy stage's direct reward
    (``policy.reward_source: judge``) share it, so every caller spends under one cap and one cache.

    Args:
        config: one judge of the run's panel (:meth:`training.config.JudgeConfig.members`, with its own budget
            and ledger); None = the run's judge.
    """
    config = config or run.run_config.judge
    if judge_backend(config.backend).local_model:
        from runs.stages import stage_io

        stage_io.ensure_models(run.run_config, reporter, [config.model])
    judge = build_judge(config, settings.MODELS_DIR)
    judge_id = judge_id_for(config)
    session = JudgeSession(run=run, judge=judge, judge_id=judge_id, cache=DbJudgeCache(judge_id))
    if judge.paid:  # a paid endpoint: reserve against the cap, persist what arrives
        session.ledger = Ledger(cap=config.budget, spent=spent_by(run, judge_id),
                                reask_share=config.reask_budget_share)
        judge.ledger = session.ledger
    return session


def judge_comparisons(run: Run, comparisons: QuerySet, reporter, *, progress_offset: int = 0) -> dict:
    """Label ``comparisons`` of ``run`` with its judge config (or its panel of judges) and pinned constitution
    version.

    Per comparison the principle(s) come from :func:`training.labeling.select_principles`, drawn by what
    the comparison compares (:func:`_sampling_keys`), so a resume or a rerun picks the same ones. Units
    already judged successfully by this judge are skipped; units whose stored judgment failed are judged
    again and their rows updated. With ``judge.panel`` every judge of the panel does so in turn, then the
    panel's verdicts are aggregated (:func:`judge_panel`).

    Args:
        run: the run (its ``config["judge"]`` and ``constitution_version``).
        comparisons: a queryset of the run's comparisons.
        reporter: progress ``progress_offset + units finished`` of ``progress_offset + units`` (times the
            panel's judges).

    Returns:
        ``{"done": judged now, "failed": of those, failed, "skipped": already stored, "total": units,
        "budget_exhausted": bool}``; with a panel these count the panel's verdicts, and ``"votes"`` holds each
        judge's counts by judge id.

    Raises:
        JudgeUnavailable: the first judgments all failed (stored; resume judges them again).
        training.progress.Cancelled: the reporter asked to stop (finished batches are stored).
    """
    config = run.run_config.judge
    if config.panel:
        return judge_panel(run, comparisons, reporter, progress_offset=progress_offset)
    return _judge_with(run, config, comparisons, reporter, progress_offset=progress_offset)


def judge_panel(run: Run, comparisons: QuerySet, reporter, *, progress_offset: int = 0) -> dict:
    """Label ``comparisons`` with each judge of ``run``'s panel (``judge.panel``), then store the panel's
    verdict of every unit all of them answered (:func:`aggregate_panel`).

    The judges take turns (one model loaded at a time), each over every unit, with its own budget, ledger and
    request cache; their judgments are votes (``Judgment.panel_vote``). A judge that stops at its budget
    leaves units without its vote, which get no verdict (``budget_exhausted``). A judge that is down stops the
    stage (:class:`JudgeUnavailable`); a resume continues where each judge stopped.

    Returns:
        :func:`judge_comparisons`'s counts, of the panel's verdicts, with ``"votes"``: ``{judge id: that
        judge's counts}``.
    """
    config = run.run_config.judge
    members = config.members()
    units = _units(comparisons, run.constitution_version, config)
    total = progress_offset + len(units) * len(members)
    votes: dict[str, dict] = {}
    for i, member in enumerate(members):
        votes[judge_id_for(member)] = _judge_with(
            run, member, comparisons, reporter, progress_offset=progress_offset + i * len(units),
            progress_total=total, units=units, vote=True,
        )
    counts = aggregate_panel(config, units)
    counts["budget_exhausted"] = any(c.get("budget_exhausted") for c in votes.values())
    dropped = sorted({name for c in votes.values() for name in c.get("dropped", [])})
    if dropped:
        counts["dropped"] = dropped
    counts["votes"] = votes
    reporter.log(f"label: panel of {len(members)} judges ({config.panel_aggregation}): {counts['done']} verdicts "
                 f"({counts['failed']} failed), {counts['skipped']} already stored, {counts['missing']} without "
                 "every judge's vote")
    return counts


def aggregate_panel(config: JudgeConfig, units: list[tuple[int, dict]]) -> dict:
    """Store the panel's verdict (:func:`training.panel.aggregate`) of each unit whose every judge answered and
    that has no verdict yet, or a failed one (then it is overwritten: a failed vote was judged again).

    A unit one judge has not judged (it stopped at its budget, or was cancelled) gets no verdict. A verdict
    stored with every vote decided never changes (decided votes are never judged again), so running this
    again writes nothing new: the label stage's resume calls it after the judges.

    Args:
        config: the run's judge config (its panel, aggregation and tie margin).
        units: ``(comparison id, principle)`` units (:func:`_units`).

    Returns:
        ``{"done": verdicts written, "failed": of those, failed (a judge's vote failed), "skipped": decided
        before, "missing": units some judge has not judged, "total": units}``.
    """
    panel_id = panel.panel_judge_id(config)
    ids = panel.member_ids(config)
    counts = {"done": 0, "failed": 0, "skipped": 0, "missing": 0, "total": len(units)}
    for start in range(0, len(units), PANEL_CHUNK):
        chunk = units[start : start + PANEL_CHUNK]
        comparison_ids = sorted({cid for cid, _ in chunk})
        stored = {
            (cid, pid): (pk, verdict)
            for pk, cid, pid, verdict in Judgment.objects.filter(
                comparison_id__in=comparison_ids, judge_id=panel_id
            ).values_list("pk", "comparison_id", "principle_id", "verdict")
        }
        decided = {key for key, (_pk, verdict) in stored.items() if verdict}
        pending = [(cid, p["id"]) for cid, p in chunk if (cid, p["id"]) not in decided]
        counts["skipped"] += len(chunk) - len(pending)
        votes: dict[tuple, dict[str, JudgedPair]] = {}
        for row in Judgment.votes.filter(comparison_id__in=comparison_ids, judge_id__in=ids).values(
            "comparison_id", "principle_id", "judge_id", *JUDGMENT_FIELDS
        ):
            key, judge_id = (row.pop("comparison_id"), row.pop("principle_id")), row.pop("judge_id")
            votes.setdefault(key, {})[judge_id] = JudgedPair(key=key, **row)
        new, retried = [], []
        for key in pending:
            by_judge = votes.get(key, {})
            if any(judge_id not in by_judge for judge_id in ids):
                counts["missing"] += 1
                continue
            unit_votes = [panel.Vote(judge_id, by_judge[judge_id]) for judge_id in ids]
            verdict = panel.aggregate(key, unit_votes, method=config.panel_aggregation, tie_margin=config.tie_margin)
            row = _judgment(panel_id, verdict)
            row.judges_agree = panel.judges_agree(unit_votes)
            earlier = stored.get(key)
            if earlier is None:
                new.append(row)
            else:
                row.pk = earlier[0]
                retried.append(row)
            counts["done"] += 1
            counts["failed"] += not verdict.verdict
        with transaction.atomic():
            Judgment.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
            if retried:
                Judgment.objects.bulk_update(retried, [*JUDGMENT_FIELDS, "judges_agree"], batch_size=200)
    return counts


def _judge_with(
    run: Run,
    config: JudgeConfig,
    comparisons: QuerySet,
    reporter,
    *,
    progress_offset: int = 0,
    progress_total: int | None = None,
    units: list[tuple[int, dict]] | None = None,
    vote: bool = False,
) -> dict:
    """Label ``comparisons`` with one judge (the run's, or one of its panel: ``vote``), as
    :func:`judge_comparisons` describes; ``units`` when already drawn, ``progress_total`` the stage's total
    when it judges more than these units."""
    version = run.constitution_version
    judge_id = judge_id_for(config)
    if units is None:
        units = _units(comparisons, version, config)
    rows = Judgment.votes if vote else Judgment.objects
    stored = rows.filter(comparison__in=comparisons.values("pk"), judge_id=judge_id)
    ok_keys, failed_rows = set(), {}
    for pk, cid, pid, verdict, cost, attempts in stored.values_list(
        "pk", "comparison_id", "principle_id", "verdict", "cost", "attempts"
    ):
        if verdict:
            ok_keys.add((cid, pid))
        else:
            failed_rows[(cid, pid)] = (pk, cost, attempts)
    pending = [(cid, p) for cid, p in units if (cid, p["id"]) not in ok_keys]
    skipped = len(units) - len(pending)
    total = progress_total if progress_total is not None else progress_offset + len(units)
    reporter.progress(progress_offset + skipped, total, "judging")
    counts = {"done": 0, "failed": 0, "skipped": skipped, "total": len(units), "budget_exhausted": False}
    if not pending:
        return counts

    session = open_judge(run, reporter, config)
    judge, cache, ledger, persist = session.judge, session.cache, session.ledger, session.persist

    reporter.log(f"label: {len(pending)} to judge with {judge_id} ({skipped} already stored)")
    dropped: set[str] = set()
    batches = label_tasks(
        judge,
        _tasks(pending),
        template=version.judge_template,
        examples=version.few_shot_examples or [],
        allow_ties=version.allow_ties,
        config=config,
        reporter=reporter,
        cache=cache,
        batch_size=max(32, 2 * config.concurrency),
        progress_offset=progress_offset + skipped,
        progress_total=total,
        spent=ledger.spent if ledger is not None else 0.0,
        while_waiting=persist if ledger is not None else None,
    )
    try:
        for pairs in batches:
            persist()
            _record_dropped(judge, dropped, reporter)
            refused = [p for p in pairs if BUDGET_REFUSED in p.error]
            if refused:  # not judged (nothing paid for what was not asked): stop at the cap
                counts["budget_exhausted"] = True
                reporter.log(
                    f"judge budget {config.budget:g} reached (spent {ledger.spent:.4f}); labeling stops here"
                )
                pairs = [p for p in pairs if BUDGET_REFUSED not in p.error]
            _write(judge_id, pairs, failed_rows, vote=vote)
            counts["done"] += len(pairs)
            counts["failed"] += sum(1 for p in pairs if not p.verdict)
            if judge.breaker is not None and judge.breaker.is_open:
                raise JudgeUnavailable(f"the judge {judge_id} stopped answering: {judge.breaker.error()}")
            if counts["failed"] == counts["done"] >= FAIL_FAST_AFTER:
                first_error = next((p.error for p in pairs if p.error), "unknown error")
                raise JudgeUnavailable(
                    f"the judge {judge_id} failed on all {counts['done']} judgments so far: {first_error}"
                )
            if refused:
                break
    finally:
        # Stop asking (calls not yet started are not made; those in flight finish), then keep what they paid.
        batches.close()
        judge.close()
        persist()
    counts["budget_exhausted"] = counts["budget_exhausted"] or counts["done"] < len(pending)
    if dropped:
        counts["dropped"] = sorted(dropped)
    return counts


def rejudge(run: Run, comparisons: QuerySet, reporter, *, version, sampling) -> list[JudgedPair]:
    """Judge ``comparisons`` (of any run) with ``run``'s judge and return the results, storing no judgment:
    the drift guard's re-judging of an anchor run's pairs (:mod:`runs.drift`).

    The request cache is not read (the anchor run's own answers may be in it, and a cached answer would
    hide a judge that changed since); a paid judge's calls are reserved against ``run``'s ``judge.budget``
    and written to its cost ledger as they arrive, like the label stage's.

    Args:
        run: the run whose judge config (and budget) is used.
        comparisons: the comparisons to judge.
        reporter: progress of these units, log lines and cancellation.
        version: the constitution version to judge under (its principles, template, few-shot examples).
        sampling: the :class:`~training.config.JudgeConfig` whose ``principle_sampling`` and ``seed`` draw
            each comparison's principles (the anchor run's: the same draw as its label stage made).

    Returns:
        One :class:`~training.judges.JudgedPair` per (comparison, principle), keyed ``(comparison id,
        principle id)``; failed ones included (verdict ``""``).

    Raises:
        JudgeUnavailable: the endpoint stopped answering.
        training.progress.Cancelled: the reporter asked to stop.
    """
    config = run.run_config.judge
    units = _units(comparisons, version, sampling)
    if not units:
        return []
    session = open_judge(run, reporter)
    judge, ledger = session.judge, session.ledger
    batches = label_tasks(
        judge,
        list(_tasks(units)),
        template=version.judge_template,
        examples=version.few_shot_examples or [],
        allow_ties=version.allow_ties,
        config=config,
        reporter=reporter,
        cache=None,
        batch_size=max(32, 2 * config.concurrency),
        spent=session.spent,
        while_waiting=session.persist if ledger is not None else None,
    )
    judged: list[JudgedPair] = []
    dropped: set[str] = set()
    try:
        for pairs in batches:
            session.persist()
            _record_dropped(judge, dropped, reporter)
            judged.extend(pairs)
            if judge.breaker is not None and judge.breaker.is_open:
                raise JudgeUnavailable(f"the judge {session.judge_id} stopped answering: {judge.breaker.error()}")
    finally:
        batches.close()
        judge.close()
        session.persist()
    return judged


def _units(comparisons: QuerySet, version, config) -> list[tuple[int, dict]]:
    """``(comparison id, principle)`` units: each comparison's principle(s) drawn from ``version`` by
    ``config.principle_sampling`` and ``config.seed`` (:func:`training.labeling.select_principles`)."""
    principles = version.principle_dicts()
    try:
        return [
            (cid, p)
            for cid, key in _sampling_keys(comparisons)
            for p in select_principles(principles, key, mode=config.principle_sampling, seed=config.seed)
        ]
    except ValueError as exc:
        raise ValueError(f"{version}: {exc}") from exc


def _record_dropped(judge, seen: set[str], reporter) -> None:
    """Say in the stage log (once each) which request parameters the endpoint refused and were dropped."""
    for name, reason in sorted(judge.dropped.items()):
        if name not in seen:
            seen.add(name)
            reporter.log(f"label: the judge endpoint does not take {name!r}; asking without it ({reason})")


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


def _write(judge_id: str, pairs: list[JudgedPair], failed_rows: dict, *, vote: bool = False) -> None:
    """Insert new judgments (a panel judge's: ``vote``) and overwrite earlier failed ones, in one transaction. A
    row judged again keeps what its earlier attempts cost (its ``cost`` and ``attempts`` add up)."""
    rows = Judgment.votes if vote else Judgment.objects
    new, retried = [], []
    for pair in pairs:
        row = _judgment(judge_id, pair, vote=vote)
        earlier = failed_rows.get(pair.key)
        if earlier is None:
            new.append(row)
        else:
            row.pk, earlier_cost, earlier_attempts = earlier
            row.cost += earlier_cost
            row.attempts += earlier_attempts
            failed_rows[pair.key] = (row.pk, row.cost, row.attempts)
            retried.append(row)
    with transaction.atomic():
        rows.bulk_create(new, batch_size=500, ignore_conflicts=True)
        if retried:
            rows.bulk_update(retried, JUDGMENT_FIELDS, batch_size=200)
