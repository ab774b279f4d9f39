"""The judge request cache in the database (:class:`runs.models.JudgeCacheEntry`), as the plain
``get_many``/``put_many`` object :func:`training.labeling.label_tasks` takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runs.models import JudgeCacheEntry

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
