"""Log your own ``transformers``/TRL training run into RLAIF Studio, as a run of kind "external".

Usage (a personal API token from the site's *API tokens* page)::

    from training.integrations.studio_callback import StudioCallback

    callback = StudioCallback("http://studio:8000", token=os.environ["STUDIO_TOKEN"], run_name="dpo-beta-0.1")
    trainer = DPOTrainer(..., callbacks=[callback])
    trainer.train()   # metrics per step, the config and the checkpoints' paths appear on the run page

The callback creates the run on ``on_train_begin`` (``POST /api/v1/external-runs/`` with the
``TrainingArguments`` and the model's config), buffers every ``on_log`` record as ``(step, name, value)``
points and sends them in batches (every ``flush_every`` logs, and at the end), records each checkpoint's
folder on ``on_save`` and the output folder at the end, and marks the run succeeded on ``on_train_end`` (or
failed, through :meth:`fail`). If an operator cancels the run on the site, the answer to the next batch says
so and training stops (``control.should_training_stop``).

Only ``requests`` is needed besides ``transformers`` (no Django). A failing Studio never stops training by
default (``strict=False``): errors are logged and the points are kept to be sent with the next batch.

Library: ``transformers.TrainerCallback`` (https://huggingface.co/docs/transformers/main_classes/callback).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import requests
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

#: Stages an external run may log under (its curves are drawn with that stage's panels).
STAGES = ("sft", "reward_model", "policy", "evaluate")


class StudioError(RuntimeError):
    """Studio refused a call (the message holds the status and Studio's error body) or could not be reached."""


class StudioCallback(TrainerCallback):
    """A ``TrainerCallback`` that logs a Trainer's run into RLAIF Studio.

    Args:
        base_url: the site, e.g. ``http://127.0.0.1:8000``.
        token: a personal API token (``rls_…``); default the ``STUDIO_TOKEN`` environment variable.
        run_name: the run's name on the site (default: ``TrainingArguments.run_name`` or the output folder).
        stage: the pipeline stage whose chart panels the curves join: ``policy`` (default), ``reward_model``,
            ``sft`` or ``evaluate``.
        config: extra config to store with the run (merged over the training arguments).
        flush_every: send buffered points after this many ``on_log`` calls (1 = every log).
        timeout_s: seconds per HTTP call.
        strict: raise :class:`StudioError` when Studio fails, instead of logging a warning.
        session: a ``requests.Session`` to use (tests, proxies).

    Raises:
        ValueError: no token, or an unknown ``stage``.
    """

    def __init__(self, base_url: str, token: str | None = None, *, run_name: str | None = None,
                 stage: str = "policy", config: Mapping[str, Any] | None = None, flush_every: int = 10,
                 timeout_s: float = 30.0, strict: bool = False, session: requests.Session | None = None) -> None:
        token = token or os.environ.get("STUDIO_TOKEN", "")
        if not token:
            raise ValueError("StudioCallback needs an API token (argument `token` or STUDIO_TOKEN)")
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.run_name = run_name
        self.stage = stage
        self.extra_config = dict(config or {})
        self.flush_every = max(1, int(flush_every))
        self.timeout_s = timeout_s
        self.strict = strict
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.run_id: int | None = None
        self.run_url: str | None = None
        self.cancelled = False
        self._buffer: list[dict[str, Any]] = []
        self._logs_since_flush = 0
        self._max_steps: int | None = None

    # --- HTTP -----------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict) -> dict | None:
        try:
            response = self.session.request(method, self.base_url + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            return self._failed(f"{method} {path}: Studio unreachable: {exc}")
        if response.status_code >= 400:
            return self._failed(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def _failed(self, message: str) -> None:
        if self.strict:
            raise StudioError(message)
        logger.warning("StudioCallback: %s", message)
        return None

    # --- what is sent -------------------------------------------------------------------------------
    @staticmethod
    def points_from_logs(step: int, logs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``on_log``'s record as ``{"step", "name", "value"}`` points: finite numbers only (booleans,
        text and NaN/inf are left out)."""
        points = []
        for name, value in logs.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(float(value)):
                points.append({"step": int(step), "name": str(name)[:100], "value": float(value)})
        return points

    def _config(self, args, model) -> dict[str, Any]:
        config: dict[str, Any] = {"training_arguments": _plain(args.to_dict()) if args is not None else {}}
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            config["model"] = {"name_or_path": getattr(model_config, "_name_or_path", ""),
                               "config": _plain(model_config.to_dict())}
        config.update(self.extra_config)
        return config

    def flush(self) -> None:
        """Send the buffered points now (kept for the next try when Studio fails)."""
        if self.run_id is None or not self._buffer:
            return
        body = {"points": self._buffer, "total_steps": self._max_steps}
        answer = self._call("POST", f"/external-runs/{self.run_id}/metrics", body)
        if answer is not None:
            self._buffer = []
            self._logs_since_flush = 0
            self.cancelled = bool(answer.get("cancel_requested"))

    def record_artifact(self, name: str, path: str, kind: str = "checkpoint") -> None:
        """Name a file or folder of the run (a path on this machine) on the run page."""
        if self.run_id is not None:
            self._call("POST", f"/external-runs/{self.run_id}/artifacts",
                       {"artifacts": [{"name": name, "path": str(path), "kind": kind}]})

    def fail(self, error: str = "") -> None:
        """Mark the run failed (call it from your script's ``except`` block)."""
        self.flush()
        if self.run_id is not None:
            self._call("PATCH", f"/external-runs/{self.run_id}", {"status": "failed", "error": error[-20_000:]})

    # --- TrainerCallback hooks ----------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.run_id is not None:
            return
        self._max_steps = state.max_steps or None
        name = self.run_name or getattr(args, "run_name", None) or os.path.basename(str(args.output_dir)) or "run"
        answer = self._call("POST", "/external-runs/", {
            "name": str(name)[:200], "config": self._config(args, model), "stage": self.stage,
            "total_steps": self._max_steps,
        })
        if answer:
            self.run_id = answer["id"]
            self.run_url = answer.get("url")
            logger.info("StudioCallback: logging into run #%s (%s)", self.run_id, self.run_url)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self._buffer.extend(self.points_from_logs(state.global_step, logs or {}))
        self._logs_since_flush += 1
        if self._logs_since_flush >= self.flush_every:
            self.flush()
            if self.cancelled:
                logger.warning("StudioCallback: the run was cancelled on the site; stopping training")
                control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(str(args.output_dir), f"checkpoint-{state.global_step}")
            self.record_artifact(f"checkpoint-{state.global_step}", os.path.abspath(folder), "checkpoint")

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.flush()
        if self.run_id is None:
            return
        self.record_artifact("output_dir", os.path.abspath(str(args.output_dir)), "policy")
        status = "cancelled" if self.cancelled else "succeeded"
        self._call("PATCH", f"/external-runs/{self.run_id}", {"status": status})


def _plain(data: Any) -> Any:
    """JSON-safe copy: dicts, lists, str, finite numbers, bools, None; anything else as its ``str``."""
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if data is None or isinstance(data, bool | int | float | str):
        return data
    return str(data)
