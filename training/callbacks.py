"""A ``transformers.TrainerCallback`` that forwards a TRL/transformers trainer's logs, progress and the
user's cancel request to a :class:`training.progress.Reporter`."""
from __future__ import annotations

import math
from collections.abc import Mapping

from transformers import TrainerCallback

from training.modeling import ensure_pad_token
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
        rename: trainer log names to report under another name (``{"objective/kl": "kl"}``), before the prefix.
    """

    def __init__(self, reporter: Reporter, message: str = "training", prefix: str = "",
                 rename: Mapping[str, str] | None = None) -> None:
        self.rename = dict(rename or {})
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
            values = {f"{self.prefix}{self.rename.get(k, k)}": v for k, v in values.items()}
            self.history.append((state.global_step, values))
            self.reporter.metric(state.global_step, values)

    def on_step_end(self, args, state, control, **kwargs):
        self.reporter.progress(state.global_step, state.max_steps or None, self.message)
        if self.reporter.should_stop():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control


#: File name of :class:`SampleCallback`'s records inside a training output folder.
SAMPLES_FILE = "samples.jsonl"


def read_samples(path) -> list[dict]:
    """The records :class:`SampleCallback` wrote to ``path``, one per step (the last record of a step wins,
    so a resumed training that samples a step again replaces it), ordered by step; ``[]`` when there is no
    file. A line cut short by a crash is skipped."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return []
    by_step: dict[int, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


class SampleCallback(TrainerCallback):
    """Greedy responses of the policy being trained to a fixed set of prompts, at the start of training, at
    every checkpoint save and at the end, appended to a JSON-lines file: what the training did to the text,
    step by step (the "sample table" of experiment trackers, e.g. W&B's ``log_completions`` table).

    Each line is ``{"step": int, "when": "start" | "checkpoint" | "end", "samples": [{"prompt", "response"}]}``
    (``end`` once training reached ``max_steps``; a training stopped early ends on its last checkpoint).
    A fresh training (step 0 at the start) empties the file; a resumed one appends after what is there.
    Sampling is greedy so that a change between steps is the model's, not the sampler's. In a training launched
    with several processes (:mod:`training.launcher`) only the main process samples and writes.

    Args:
        prompts: the fixed prompts (plain text or chat messages); keep them few (each save generates for all).
        path: the JSON-lines file.
        max_new_tokens: response length.
        reporter: told one log line per sampled step (optional).
    """

    def __init__(self, prompts, path, max_new_tokens: int = 32, reporter: Reporter | None = None) -> None:
        from pathlib import Path

        self.prompts = list(prompts)
        self.path = Path(path)
        self.max_new_tokens = max_new_tokens
        self.reporter = reporter
        self._last_step: int | None = None
        self._main = True  # this is the main process (set from the trainer's state when training begins)

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._main = getattr(state, "is_world_process_zero", True)
        if state.global_step == 0 and self._main:
            self.path.unlink(missing_ok=True)
            self._sample(state.global_step, "start", model, processing_class)

    def on_save(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._sample(state.global_step, "checkpoint", model, processing_class)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        # a training stopped early (cancel) already sampled its last save: only a finished one is "end"
        if state.max_steps and state.global_step >= state.max_steps:
            self._sample(state.global_step, "end", model, processing_class, again=True)

    def _sample(self, step: int, when: str, model, tokenizer, again: bool = False) -> None:
        import json

        if model is None or tokenizer is None or not self.prompts or not self._main:
            return
        if step == self._last_step and not again:
            return
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
        responses = self.responses(model, tokenizer)
        self._last_step = step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"step": step, "when": when,
                  "samples": [{"prompt": _prompt_text(p), "response": r} for p, r in zip(self.prompts, responses,
                                                                                         strict=True)]}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.reporter is not None:
            self.reporter.log(f"samples: {len(responses)} fixed prompts answered at step {step} ({when})")

    def responses(self, model, tokenizer) -> list[str]:
        """Greedy responses of ``model`` to the prompts (left padding, eval mode, no gradients; the model's
        training mode and the tokenizer's padding side are restored)."""
        from training.config import GenerationConfig
        from training.generation import generate

        was_training = model.training
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        ensure_pad_token(tokenizer)
        model.eval()
        try:
            config = GenerationConfig(temperature=0.0, max_new_tokens=self.max_new_tokens,
                                      batch_size=max(1, len(self.prompts)), samples_per_prompt=1)
            samples = generate(model, tokenizer, self.prompts, config, num_samples=1)
        finally:
            tokenizer.padding_side = side
            if was_training:
                model.train()
        return [s.text for s in sorted(samples, key=lambda s: s.prompt_index)]


def _prompt_text(conversation) -> str:
    """A prompt as one readable string (the last user turn of a chat)."""
    if isinstance(conversation, str):
        return conversation
    users = [m.get("content", "") for m in conversation if m.get("role") == "user"]
    return users[-1] if users else " ".join(m.get("content", "") for m in conversation)
