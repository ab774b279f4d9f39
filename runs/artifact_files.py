"""Artifacts on the run page: where each came from (lineage) and its files as a download (a single file as
it is, a folder as a zip streamed while it is written, so a model of gigabytes never sits in memory)."""
from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from runs.models import Artifact, Judgment, Run

#: Files already compressed (weights, archives): stored in the zip as they are, not deflated again.
STORED_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".gguf", ".npy", ".arrow", ".zip", ".gz",
                             ".bz2", ".xz", ".zst", ".parquet", ".png", ".jpg"})
CHUNK_BYTES = 1 << 20


class ArtifactMissing(Exception):
    """The artifact's path is gone, or lies outside the artifacts folder (never served)."""


def artifact_location(artifact: Artifact) -> Path:
    """The artifact's file or folder, resolved, when it exists under ``settings.ARTIFACTS_DIR``.

    Raises:
        ArtifactMissing: the path does not exist, or resolves outside ``ARTIFACTS_DIR`` (a stored path is
            data, and a download must never serve another file of the machine).
    """
    root = Path(settings.ARTIFACTS_DIR).resolve()
    path = Path(artifact.path).resolve()
    if not path.is_relative_to(root):
        raise ArtifactMissing(f"artifact {artifact.pk} ({artifact.name}) lies outside the artifacts folder")
    if not path.exists():
        raise ArtifactMissing(f"artifact {artifact.pk} ({artifact.name}): {artifact.path} no longer exists")
    return path


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream: ``zipfile`` then writes data descriptors and never seeks back, so
    what it wrote so far can be handed on and forgotten."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def folder_files(folder: Path) -> list[Path]:
    """Regular files under ``folder``, sorted; symbolic links are left out (they may point anywhere)."""
    files = []
    for parent, _dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            path = Path(parent) / name
            if path.is_file() and not path.is_symlink():
                files.append(path)
    return sorted(files)


def zip_chunks(folder: Path, root_name: str) -> Iterator[bytes]:
    """The zip of ``folder`` (entries under ``root_name/``), yielded in pieces as it is written (one file
    chunk of :data:`CHUNK_BYTES` at a time): weights are stored, other files deflated."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for path in folder_files(folder):
            arcname = f"{root_name}/{path.relative_to(folder).as_posix()}"
            stored = path.suffix.lower() in STORED_SUFFIXES
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            with path.open("rb") as src, archive.open(info, "w", force_zip64=True) as dest:
                while chunk := src.read(CHUNK_BYTES):
                    dest.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def download_name(run: Run, artifact: Artifact, folder: bool) -> str:
    """``run-<key>-<kind>-<name>[.zip|<suffix>]`` with only safe characters."""
    stem = f"run-{run.key}-{artifact.kind}-{artifact.name}"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:150]
    return f"{stem}.zip" if folder else stem + Path(artifact.path).suffix


# --- lineage ---------------------------------------------------------------------------------------------


def _link(text: str, href: str | None = None) -> dict:
    return {"text": text, "href": href}


def lineage(run: Run, artifacts: list[Artifact]) -> dict[int, list[dict]]:
    """Where each artifact came from, as short linked phrases: ``{artifact id: [{"text", "href"}]}``.

    * reward model: the AI preferences it was trained on (pairs kept by the filters), the judgments they came
      from and the judge, the base model;
    * policy: the reference policy it started from and the reward model it optimised (or DPO's preferences);
    * evaluation report: the tuned policy it judged, against which reference, and the judge;
    * SFT model: its training data; checkpoint: its stage and step; policy samples: the sample table.
    """
    by_kind: dict[str, Artifact] = {}
    for a in artifacts:
        by_kind.setdefault(a.kind, a)
    pairs_url = reverse("runs:pairs", args=[run.pk])
    judge_model = run.run_config.judge.model
    counts = Judgment.objects.filter(comparison__run=run).aggregate(
        train=Count("pk", filter=Q(comparison__purpose="train")), decided=Count(
            "pk", filter=Q(comparison__purpose="train") & ~Q(verdict="")))

    def anchor(kind: str) -> str | None:
        other = by_kind.get(kind)
        return f"#artifact-{other.pk}" if other else None

    out: dict[int, list[dict]] = {}
    for a in artifacts:
        m = a.metrics or {}
        items: list[dict] = []
        if a.kind == Artifact.Kind.REWARD_MODEL:
            if "train_pairs" in m:
                items.append(_link(f"trained on {int(m['train_pairs'])} AI preferences"
                                   f" (+{int(m.get('eval_pairs', 0))} held out"
                                   + (f", {int(m['human_pairs'])} human-labelled" if m.get("human_pairs") else "")
                                   + ")"))
            items.append(_link(f"from {counts['decided']} decided of {counts['train']} judgments"
                               + (f" by {judge_model}" if judge_model else ""), pairs_url))
            if m.get("base_model"):
                items.append(_link(f"base {m['base_model']}"))
        elif a.kind == Artifact.Kind.POLICY:
            if m.get("reference"):
                items.append(_link(f"started from {m['reference']}", anchor(Artifact.Kind.SFT_MODEL)))
            algorithm = (m.get("config") or {}).get("algorithm", "")
            if algorithm == "dpo":
                items.append(_link(f"DPO on {int(m['preferences'])} AI preferences" if "preferences" in m
                                   else "DPO on the AI preferences", pairs_url))
            elif m.get("judge"):  # policy.reward_source judge: no reward model in between
                items.append(_link(f"{algorithm or 'RL'} with the judge {m['judge']} as the reward (direct RLAIF)"))
            elif m.get("reward_model") or by_kind.get(Artifact.Kind.REWARD_MODEL):
                items.append(_link(f"{algorithm or 'RL'} against reward model "
                                   + Path(m.get("reward_model") or by_kind[Artifact.Kind.REWARD_MODEL].path).name,
                                   anchor(Artifact.Kind.REWARD_MODEL)))
        elif a.kind == Artifact.Kind.REPORT and a.name == "evaluation":
            policy = by_kind.get(Artifact.Kind.POLICY)
            if policy:
                items.append(_link(f"judged tuned policy {Path(policy.path).name}", anchor(Artifact.Kind.POLICY)))
                reference = (policy.metrics or {}).get("reference")
                if reference:
                    items.append(_link(f"against reference {reference}"))
            if judge_model:
                items.append(_link(f"judge {judge_model}"))
        elif a.kind == Artifact.Kind.REPORT and a.name == "policy_samples":
            items.append(_link("the policy's answers to fixed eval prompts at each checkpoint",
                               reverse("runs:samples", args=[run.pk])))
        elif a.kind == Artifact.Kind.SFT_MODEL:
            source = m.get("source", "")
            items.append(_link(f"{int(m.get('examples', 0))} {source or 'SFT'} examples", anchor(Artifact.Kind.DATASET)
                               if source == "critique_revise" else None))
            if m.get("base_model"):
                items.append(_link(f"base {m['base_model']}"))
        elif a.kind == Artifact.Kind.CHECKPOINT:
            items.append(_link(f"{a.name} stage, step {m.get('step', '?')}"))
        out[a.pk] = items
    return out


def artifact_rows(run: Run) -> list[dict]:
    """The run's artifacts for the page and its progress JSON: kind, name, path, metrics, creation time,
    download URL (None when the files are gone), whether it downloads as a zip, and its lineage."""
    artifacts = list(Artifact.objects.filter(run=run).order_by("created_at"))
    links = lineage(run, artifacts)
    rows = []
    for a in artifacts:
        try:
            path = artifact_location(a)
        except ArtifactMissing:
            path = None
        rows.append({
            "id": a.pk, "kind": a.get_kind_display(), "name": a.name, "path": a.path, "metrics": a.metrics,
            "created_at": a.created_at.isoformat(),
            "created": timezone.localtime(a.created_at).strftime("%Y-%m-%d %H:%M"),
            "download_url": reverse("runs:artifact_download", args=[run.pk, a.pk]) if path else None,
            "zip": bool(path and path.is_dir()), "lineage": links.get(a.pk, []),
        })
    return rows
