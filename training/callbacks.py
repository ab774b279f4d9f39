"""A ``transformers.TrainerCallback`` that forwards a TRL/transformers trainer's logs, progress and the
user's cancel request to a :class:`training.progress.Reporter`."""
from __future__ import annotations

import math
from collections.abc import Mapping

from transformers import TrainerCallback

from training.progress import Reporter

#: Trainer log keys that are bookkeeping, not learning curves.
SKIPPED_KEYS = frozenset({"epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"})


def numeric_logs(logs: Mapping[str, object]) -> dict[str, float]:
    """The finite scalar entries of a trainer's log dict, with ``/`` in names kept (``rewards/fn/mean``).

    Non-numbers, NaN/inf and :data:`SKIPPED_KEYS` are dropped.
    """
    values: dict[str, float] = {}
    for key, value in logs.items():
        if key in SKIPPED_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        value = float(value)
        if math.isfinite(value):
            values[key] = value
    return values


class ReporterCallback(TrainerCallback):
    """Stream a trainer's metrics and progress to ``reporter``, and stop it cleanly on request.

    * ``on_log``: ``reporter.metric(global_step, {name: value})`` for every finite scalar logged
      (loss, learning rate, reward, kl, entropy, accuracy, …), optionally with a name prefix; not the
      ``train_loss`` summary of a training stopped on request (its resume logs the whole run's).
    * ``on_step_end``: ``reporter.progress(global_step, max_steps)``; when ``reporter.should_stop()`` turns
      True the callback sets ``control.should_save`` and ``control.should_training_stop``, so the trainer
      writes a checkpoint at this step and returns; :attr:`stopped` then tells the caller to raise
      :class:`training.progress.Cancelled`.

    Args:
        reporter: where to report.
        message: progress message (e.g. ``"policy: rloo"``).
        prefix: prepended to every metric name (``""`` keeps the trainer's names).
    """

    def __init__(self, reporter: Reporter, message: str = "training", prefix: str = "") -> None:
        self.reporter = reporter
        self.message = message
        self.prefix = prefix
        self.stopped = False
        self.history: list[tuple[int, dict[str, float]]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = numeric_logs(logs or {})
        if self.stopped:  # the run's average loss, of a run cut short: the resumed run logs the real one
            values.pop("train_loss", None)
        if values:
            values = {f"{self.prefix}{k}": v for k, v in values.items()}
            self.history.append((state.global_step, values))
            self.reporter.metric(state.global_step, values)

    def on_step_end(self, args, state, control, **kwargs):
        self.reporter.progress(state.global_step, state.max_steps or None, self.message)
        if self.reporter.should_stop():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control
