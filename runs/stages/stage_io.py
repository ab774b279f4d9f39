"""What the training stages (sft, reward_model, policy, evaluate) share: building missing demo models,
naming the reference policy, recording artifacts and checkpoints, and the run's preference pairs."""
from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

from django.conf import settings

from runs.models import Artifact, Run
from training.config import RunConfig
from training.modeling import is_demo, resolve
from training.progress import Reporter


def ensure_models(config: RunConfig, reporter: Reporter, names: list[str] | None = None) -> None:
    """Build the offline demo models when the run config names a ``demo://`` model that is not built yet
    (the first demo run builds them without being asked, with progress shown)."""
    from training.demo_models import ensure_demo_models, missing_demo_models

    wanted = names if names is not None else [config.generation.model, config.judge.model]
    if any(is_demo(n) for n in wanted) and missing_demo_models(settings.MODELS_DIR):
        reporter.log("building the offline demo models (first demo run; under a minute on an idle CPU)")
        ensure_demo_models(settings.MODELS_DIR, reporter)


def reference_policy(run: Run, config: RunConfig, reporter: Reporter | None = None) -> str:
    """Path of the run's reference policy: its SFT model when the SFT stage saved one, else
    ``generation.model`` resolved (demo models are built when missing).

    Raises:
        training.modeling.ModelNotFound: the configured model does not exist.
    """
    sft = run.artifacts.filter(kind=Artifact.Kind.SFT_MODEL).order_by("-created_at").first()
    if sft and Path(sft.path).exists():
        return sft.path
    if reporter is not None:
        ensure_models(config, reporter, [config.generation.model])
    return resolve(config.generation.model, settings.MODELS_DIR, reporter)


def artifact_path(run: Run, kind: str) -> str | None:
    """The path of the run's newest artifact of ``kind`` that still exists on disk, or None."""
    for artifact in run.artifacts.filter(kind=kind).order_by("-created_at"):
        if Path(artifact.path).exists():
            return artifact.path
    return None


def record_artifact(run: Run, kind: str, name: str, path: Path | str, metrics: dict | None = None) -> Artifact:
    """Create or update the run's artifact ``(kind, name)``."""
    artifact, _ = Artifact.objects.update_or_create(
        run=run, kind=kind, name=name, defaults={"path": str(path), "metrics": _jsonable(metrics or {})}
    )
    return artifact


def record_checkpoint(run: Run, stage: str, checkpoints_dir: Path) -> None:
    """Record the newest checkpoint under ``checkpoints_dir`` as the artifact ``checkpoint/<stage>``."""
    from training.checkpoints import checkpoint_step, last_checkpoint

    last = last_checkpoint(checkpoints_dir)
    if last:
        record_artifact(run, Artifact.Kind.CHECKPOINT, stage, last, {"step": checkpoint_step(last)})


def fingerprint(*parts) -> str:
    """A short hash of JSON-able parts (a stage's data and config), to tell whether saved work still fits."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def start_over_if_changed(out: Path, stamp: str, reporter: Reporter, what: str) -> None:
    """Drop the checkpoints under ``out/checkpoints`` when they were written for other data or another
    config (``stamp`` from :func:`fingerprint`): a resume must continue the same training, not another."""
    marker = out / "fingerprint.json"
    if marker.exists() and json.loads(marker.read_text()).get("fingerprint") != stamp:
        reporter.log(f"{what}: data or config changed since the last attempt; training from scratch")
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": stamp}))


def _jsonable(metrics: dict) -> dict:
    return json.loads(json.dumps(metrics, default=str, allow_nan=True).replace("NaN", "null"))


# --- preference pairs -------------------------------------------------------------------------------


def preference_datasets(run: Run, config: RunConfig, reporter: Reporter | None = None):
    """Chosen/rejected datasets for reward-model (and DPO) training, split by prompt into train and eval.

    The pairs come from :func:`runs.exporting.preference_dataset` with the run's ``reward_model`` filters
    (``min_confidence``, ``position_consistent_only``, ``prefer_human_labels``). Then:

    * eval: ``reward_model.eval_ratio`` of the prompts (seeded shuffle), so eval prompts are unseen in
      training; eval pairs carry the AI's verdict (AI-label accuracy) and ``human_eval`` the eval pairs that
      humans decided, with the human majority.
    * ``margin``: the Bradley-Terry logit of the chosen side's averaged probability
      (:func:`training.reward_model.margin_from_p`; human-decided pairs count as p = 0.9); TRL uses it only
      with ``reward_model.use_margin``.

    Returns:
        ``(train, eval, human_eval, counts)``: three ``datasets.Dataset`` with ``prompt`` (chat messages),
        ``chosen``, ``rejected`` (texts), ``margin``, ``comparison_id``, ``p_a``, ``position_consistent``,
        and a dict of counts.
    """
    from datasets import Dataset

    from runs.exporting import PreferenceFilters, preference_dataset
    from training.reward_model import margin_from_p

    rm = config.reward_model
    filters = PreferenceFilters(
        min_confidence=rm.min_confidence,
        position_consistent_only=rm.position_consistent_only,
        prefer_human_labels=rm.prefer_human_labels,
    )
    exported = preference_dataset(run, filters, conversational=True)
    prompt_ids = sorted(set(exported["prompt_id"]))
    random.Random(rm.seed).shuffle(prompt_ids)
    n_eval = int(round(len(prompt_ids) * rm.eval_ratio)) if len(prompt_ids) > 1 else 0
    eval_prompts = set(prompt_ids[:n_eval])
    out: dict[str, list[dict]] = {"train": [], "eval": [], "human": []}

    def pair(row: dict, side: str) -> dict:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        a, b = (chosen, rejected) if row["chosen_side"] == "A" else (rejected, chosen)
        p_a = row["p_a"]
        p_side = 0.9 if p_a is None or row["label_source"] == "human" else (p_a if side == "A" else 1 - p_a)
        return {
            "prompt": row["prompt"],
            "chosen": a if side == "A" else b,
            "rejected": b if side == "A" else a,
            "margin": margin_from_p(p_side),
            "comparison_id": row["comparison_id"],
            "p_a": p_a if p_a is not None else float("nan"),
            "position_consistent": bool(row["position_consistent"]),
        }

    for row in exported:
        if row["prompt_id"] not in eval_prompts:
            out["train"].append(pair(row, row["chosen_side"]))
            continue
        if row["ai_verdict"] in ("A", "B"):
            out["eval"].append(pair(row, row["ai_verdict"]))
        if row["human_label"] in ("A", "B"):
            out["human"].append(pair(row, row["human_label"]))
    counts = {
        "preferences": len(exported),
        "human_decided": sum(1 for s in exported["label_source"] if s == "human"),
        **{f"{k}_pairs": len(v) for k, v in out.items()},
    }
    if reporter is not None:
        reporter.log("preferences: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    columns = ["prompt", "chosen", "rejected", "margin", "comparison_id", "p_a", "position_consistent"]
    train, eval_, human = (
        Dataset.from_list(out[k]) if out[k] else Dataset.from_dict({c: [] for c in columns}) for k in out
    )
    return train, eval_, human, counts
