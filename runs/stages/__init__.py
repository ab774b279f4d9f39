"""Stage implementations: one module per stage, each with ``run(stage_run, reporter) -> None``.

A stage function is thin: it loads rows, calls ``training``, writes results in bulk (idempotently, so a
second call after an interruption only does what is missing) and reports progress. It raises
:class:`training.progress.Cancelled` when the reporter asks it to stop.
"""
from __future__ import annotations

from collections.abc import Callable

from django.utils.module_loading import import_string

#: stage name -> dotted path of its ``run`` function (imported on first use: keeps torch out of the web process).
STAGE_FUNCTIONS: dict[str, str] = {
    "sft": "runs.stages.sft.run",
    "generate": "runs.stages.generate.run",
    "label": "runs.stages.label.run",
    "reward_model": "runs.stages.reward_model.run",
    "policy": "runs.stages.policy.run",
    "evaluate": "runs.stages.evaluate.run",
}


def stage_function(stage: str) -> Callable:
    """Return the ``run`` function of ``stage``.

    Raises:
        KeyError: ``stage`` is not a known stage name.
    """
    return import_string(STAGE_FUNCTIONS[stage])
