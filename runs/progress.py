"""The Django side of :class:`training.progress.Reporter`: progress, metrics and log lines of a stage,
written to its :class:`~runs.models.StageRun` with throttling so pages can poll them cheaply."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

from django.utils import timezone

from rlaif_site.queueing import SHUTDOWN
from runs.models import MetricPoint, Run, StageRun, StageStatus

LOG_TAIL_LINES = 60


class DbReporter:
    """Reports one stage's progress to the database.

    Progress and log lines are written at most every ``interval`` seconds (and on :meth:`flush`); metric
    points are upserted in bulk (unique on run, stage, name, step, so a resumed stage re-logging a step
    overwrites rather than duplicates). ``should_stop`` re-reads the run's cancel flag at most every
    ``interval`` seconds, and also stops an attempt that was superseded (:attr:`superseded`): its row was
    re-queued after its worker was taken for lost, or ended by a forced cancel (see :mod:`runs.recovery`).
    """

    def __init__(self, stage_run: StageRun, interval: float = 1.0) -> None:
        self.stage_run = stage_run
        self.interval = interval
        self._lines: deque[str] = deque(stage_run.log_tail.splitlines()[-LOG_TAIL_LINES:], maxlen=LOG_TAIL_LINES)
        self._metrics: dict[tuple[str, int], float] = {}
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False
        #: The stage row no longer belongs to this attempt (re-queued, taken by another attempt, ended).
        self.superseded = False

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        self.stage_run.progress_done = max(0, int(done))
        if total is not None:
            self.stage_run.progress_total = max(0, int(total))
        if message:
            self.stage_run.message = message[:500]
        self._maybe_flush()

    def metric(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                self.log(f"step {step}: metric {name} is {value}; not stored")
                continue
            self._metrics[(name, int(step))] = value
        self._maybe_flush()

    def log(self, line: str) -> None:
        for part in str(line).splitlines() or [""]:
            self._lines.append(part[:1000])
        self._maybe_flush()

    def should_stop(self) -> bool:
        if SHUTDOWN.is_set():
            return True
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= self.interval:
            self._last_cancel_check = now
            self._cancelled = Run.objects.filter(pk=self.stage_run.run_id, cancel_requested=True).exists()
            self.superseded = not StageRun.objects.filter(
                pk=self.stage_run.pk, status=StageStatus.RUNNING, attempt=self.stage_run.attempt
            ).exists()
        return self._cancelled or self.superseded

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write pending progress, log tail and metrics now."""
        self._last_write = time.monotonic()
        self.stage_run.log_tail = "\n".join(self._lines)
        self.stage_run.heartbeat_at = timezone.now()
        self.stage_run.save(
            update_fields=["progress_done", "progress_total", "message", "log_tail", "heartbeat_at"]
        )
        if self._metrics:
            run_id, stage = self.stage_run.run_id, self.stage_run.stage
            points = [
                MetricPoint(run_id=run_id, stage=stage, name=name, step=step, value=value)
                for (name, step), value in self._metrics.items()
            ]
            MetricPoint.objects.bulk_create(
                points,
                batch_size=500,
                update_conflicts=True,
                unique_fields=["run", "stage", "name", "step"],
                update_fields=["value"],
            )
            self._metrics.clear()
