"""The judge request cache in the database (:class:`runs.models.JudgeCacheEntry`), as the plain
``get_many``/``put_many`` object :func:`training.labeling.label_tasks` takes, and the cost ledger
(:class:`runs.models.JudgeCharge`): what a paid judge's :class:`~training.judges.budget.Ledger` reports is
persisted here as it arrives (:func:`persist_events`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db.models import Sum

from runs.models import JudgeCacheEntry, JudgeCharge, Judgment
from training.judges.budget import Answered, Charge

CHUNK = 500


class DbJudgeCache:
    """A :class:`training.labeling.JudgeCache` stored in ``JudgeCacheEntry`` rows.

    Args:
        judge_id: recorded on new entries (for inspection and clean-up; the key already covers the judge).
    """

    def __init__(self, judge_id: str) -> None:
        self.judge_id = judge_id

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), CHUNK):
            rows = JudgeCacheEntry.objects.filter(key__in=keys[start : start + CHUNK]).values_list("key", "output")
            found.update(rows)
        return found

    def put_many(self, entries: Mapping[str, dict]) -> None:
        rows = [JudgeCacheEntry(key=k, judge_id=self.judge_id[:300], output=v) for k, v in entries.items()]
        JudgeCacheEntry.objects.bulk_create(rows, batch_size=CHUNK, ignore_conflicts=True)


def persist_events(run, judge_id: str, events: Sequence[Charge | Answered], cache: DbJudgeCache) -> None:
    """Write a judge ledger's queued events: each :class:`Charge` as a ``JudgeCharge`` row of ``run`` and each
    :class:`Answered` into the request cache, so that a stage stopped at any point (an RQ timeout, a cancel)
    keeps what it paid for and a resume is answered from the cache instead of paying again."""
    charges = [
        JudgeCharge(
            run=run,
            judge_id=judge_id[:300],
            request_key=e.request_key[:64],
            prompt_tokens=e.prompt_tokens,
            completion_tokens=e.completion_tokens,
            cost=e.cost,
            outcome=e.outcome[:20],
        )
        for e in events
        if isinstance(e, Charge)
    ]
    if charges:
        JudgeCharge.objects.bulk_create(charges, batch_size=CHUNK)
    answers = {e.request_key: e.result for e in events if isinstance(e, Answered) and e.request_key}
    if answers:
        cache.put_many(answers)


def spent_by(run, judge_id: str) -> float:
    """What ``run`` has paid its judge ``judge_id`` so far: the sum of its charges (for runs labelled before the
    ledger existed, the sum of their judgments' costs, whichever is larger)."""
    charged = JudgeCharge.objects.filter(run=run, judge_id=judge_id).aggregate(s=Sum("cost"))["s"] or 0.0
    # all rows: a panel judge's judgments are votes (Judgment.objects holds verdicts only)
    judged = Judgment.all_rows.filter(comparison__run=run, judge_id=judge_id).aggregate(s=Sum("cost"))["s"] or 0.0
    return max(charged, judged)
