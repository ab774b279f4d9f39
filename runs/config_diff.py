"""What differs between runs: their configs (with defaults filled in), pinned constitution version, prompt
set and stages, flattened to dotted paths, keeping only the paths whose values are not all equal."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from runs.models import Run
from training.config import ConfigError

MISSING = object()


def flatten(data: Mapping, prefix: str = "") -> dict[str, object]:
    """``{"policy": {"beta": 0.1}}`` → ``{"policy.beta": 0.1}``; lists and other values are leaves."""
    flat: dict[str, object] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def full_config(run: Run) -> dict:
    """The run's config with every default filled in (as its stages read it); the stored dict as it is when
    it no longer validates (an old run), so a diff still shows it."""
    try:
        return run.run_config.to_dict()
    except (ConfigError, TypeError, ValueError):
        return dict(run.config)


def run_facts(run: Run) -> dict[str, object]:
    """Everything a comparison of runs looks at, flattened: the pinned inputs, the stages, the config."""
    return {
        "constitution": str(run.constitution_version) if run.constitution_version_id else "—",
        "prompt set": str(run.prompt_set) if run.prompt_set_id else "—",
        "stages": ", ".join(s.stage for s in run.ordered_stages()),
        **flatten(full_config(run)),
    }


def _shown(value) -> str:
    if value is MISSING:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def config_diff(runs: Sequence[Run]) -> dict:
    """The paths whose values differ between ``runs``, in config order.

    Returns:
        ``{"rows": [{"path", "cells": [{"value": text, "differs": bool} per run]}],
        "same": n}`` where ``same`` counts the paths equal in every run (not listed). A path one run lacks
        shows ``—``; ``differs`` is True where a run's value is not the first run's.
    """
    facts = [run_facts(r) for r in runs]
    paths: list[str] = []
    for f in facts:
        paths.extend(p for p in f if p not in paths)
    rows, same = [], 0
    for path in paths:
        values = [f.get(path, MISSING) for f in facts]
        if all(v == values[0] and (v is MISSING) == (values[0] is MISSING) for v in values):
            same += 1
            continue
        rows.append({"path": path, "cells": [{"value": _shown(v), "differs": v != values[0]} for v in values]})
    return {"rows": rows, "same": same}
