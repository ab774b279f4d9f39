"""The progress/metrics seam between ``training`` and whoever runs it (an RQ job, a CLI, a test).

Long-running functions take a ``reporter`` argument and call it; they never know about databases or queues.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a training function when its reporter says the work should stop.

    Work done before the raise has been reported and persisted; running the same stage again continues
    from there.
    """


@runtime_checkable
class Reporter(Protocol):
    """What ``training`` functions report to.

    Methods:
        progress(done, total, message): ``done`` of ``total`` units (prompts, comparisons, steps) finished.
        metric(step, values): scalar metrics (e.g. ``{"loss": 0.61, "kl": 0.02}``) at a global step.
        log(line): one human-readable line for the stage's log tail.
        should_stop(): True once the user cancelled; callers then raise :class:`Cancelled` at a safe point.
    """

    def progress(self, done: int, total: int | None = None, message: str = "") -> None: ...

    def metric(self, step: int, values: Mapping[str, float]) -> None: ...

    def log(self, line: str) -> None: ...

    def should_stop(self) -> bool: ...


class NullReporter:
    """A reporter that logs through :mod:`logging` and never asks to stop (CLI and library use)."""

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        logger.debug("progress %s/%s %s", done, total, message)

    def metric(self, step: int, values: Mapping[str, float]) -> None:
        logger.debug("step %s %s", step, dict(values))

    def log(self, line: str) -> None:
        logger.info("%s", line)

    def should_stop(self) -> bool:
        return False


class RecordingReporter(NullReporter):
    """A reporter that keeps everything it is told, for tests and the CLI summary.

    Attributes:
        progress_calls: list of ``(done, total, message)``.
        metrics: list of ``(step, {name: value})``.
        lines: logged lines.
        stop_after: when set, ``should_stop`` turns True once this many progress calls were made.
    """

    def __init__(self, stop_after: int | None = None) -> None:
        self.progress_calls: list[tuple[int, int | None, str]] = []
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.lines: list[str] = []
        self.stop_after = stop_after

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        self.progress_calls.append((done, total, message))

    def metric(self, step: int, values: Mapping[str, float]) -> None:
        self.metrics.append((step, dict(values)))

    def log(self, line: str) -> None:
        self.lines.append(line)

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.progress_calls) >= self.stop_after


def check_cancelled(reporter: Reporter) -> None:
    """Raise :class:`Cancelled` if ``reporter.should_stop()``; call between units of work."""
    if reporter.should_stop():
        raise Cancelled("stopped on request")
