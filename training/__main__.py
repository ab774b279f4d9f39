"""Run the labeling protocol and reward-model training on files, without Django, Redis or the studio:

    python -m training label --pairs pairs.jsonl --constitution constitution.yaml \\
        --backend openai --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --out judgments.jsonl
    python -m training reward-model --preferences preferences.jsonl --base-model minilm --out rm/

``label`` judges each pair of a JSONL file (``prompt``: text or chat messages, ``response_a``, ``response_b``,
optionally ``id``) under principles drawn from a constitution file (the schema the studio exports, YAML or
JSON: :mod:`constitutions.io`), in both orders, exactly as the label stage does (:mod:`training.labeling`), and
writes one JSON line per judgment. The judge is configured with flags, or with ``--config`` (a run config,
JSON or YAML; its ``judge`` section is used and the flags override it).

``reward-model`` trains a Bradley-Terry reward model (:func:`training.reward_model.train_reward_model`) on a
preference JSONL in TRL's format (``prompt``, ``chosen``, ``rejected``; text or conversational, as the studio's
*Export preferences* writes it), holds out ``reward_model.eval_ratio`` of the prompts, saves the model folder
and prints its accuracy on the held-out pairs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.config import ConfigError, RunConfig
from training.judge_prompt import DEFAULT_TEMPLATE
from training.progress import NullReporter

#: Judge flags of ``label``: flag name -> ``judge`` field.
JUDGE_FLAGS = {
    "backend": "backend", "model": "model", "base_url": "base_url", "api_key_env": "api_key_env", "api": "api",
    "tie_margin": "tie_margin", "seed": "seed", "principle_sampling": "principle_sampling",
    "concurrency": "concurrency", "max_new_tokens": "max_new_tokens",
}
#: Reward-model flags of ``reward-model``: flag name -> ``reward_model`` field.
REWARD_MODEL_FLAGS = {
    "base_model": "base_model", "epochs": "epochs", "batch_size": "batch_size", "learning_rate": "learning_rate",
    "max_length": "max_length", "eval_ratio": "eval_ratio", "seed": "seed",
}


class InputError(ValueError):
    """An input file is missing, unreadable or does not follow its schema (the message names file and field)."""


class PrintReporter(NullReporter):
    """A :class:`training.progress.Reporter` that writes progress and log lines to stderr (never stops)."""

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        print(f"{message or 'progress'}: {done}/{total if total is not None else '?'}", file=sys.stderr)

    def log(self, line: str) -> None:
        print(line, file=sys.stderr)


# --- reading files ----------------------------------------------------------------------------------


def read_jsonl(path: Path, required: Sequence[str]) -> list[dict]:
    """The JSON objects of a JSON-lines file (blank lines skipped), each with the ``required`` keys.

    Raises:
        InputError: a line that is not a JSON object or lacks a required key (named with its line number).
    """
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: must be a JSON object")
        missing = [key for key in required if key not in row]
        if missing:
            raise InputError(f"{path}:{number}: missing {', '.join(missing)}")
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def read_structured(path: Path) -> Any:
    """A JSON (``.json``) or YAML file's content.

    Raises:
        InputError: the file is missing or does not parse.
    """
    text = _read_text(path)
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise InputError(f"{path}: does not parse: {exc}") from None


def load_constitution(path: Path) -> dict:
    """A constitution file in the studio's export schema (:mod:`constitutions.io`; YAML or JSON), as the label
    stage reads a constitution version: ``principles`` (dicts with ``id`` = position, ``name``,
    ``comparison``, ``weight``, ``enabled``), ``judge_template``, ``few_shot_examples`` and ``allow_ties``.

    Only what labeling needs is checked here; the studio's import checks the rest of the schema.

    Raises:
        InputError: no principles, or a principle without name or comparison text, or a negative weight
            (named by path, e.g. ``principles[2].weight``).
    """
    data = read_structured(path)
    if not isinstance(data, dict) or not isinstance(data.get("principles"), list) or not data["principles"]:
        raise InputError(f"{path}: principles: a non-empty list is required")
    principles = []
    for index, item in enumerate(data["principles"]):
        where = f"{path}: principles[{index}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: must be an object")
        for key in ("name", "comparison"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise InputError(f"{where}.{key}: required text")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise InputError(f"{where}.weight: must be a number ≥ 0; got {weight!r}")
        principles.append({**item, "id": index, "weight": float(weight), "enabled": bool(item.get("enabled", True))})
    return {
        "principles": principles,
        "judge_template": data.get("judge_template") or DEFAULT_TEMPLATE,
        "few_shot_examples": list(data.get("few_shot_examples") or []),
        "allow_ties": bool(data.get("allow_ties", False)),
    }


def run_config(args: argparse.Namespace, section: str, flags: dict[str, str]) -> RunConfig:
    """The run config of ``--config`` (empty when not given) with ``section``'s fields overridden by the flags
    that were given, validated as a launch validates it.

    Raises:
        InputError: the config file does not parse; ConfigError: a field is wrong (named by its path).
    """
    data = read_structured(Path(args.config)) if args.config else {}
    if not isinstance(data, dict):
        raise InputError(f"{args.config}: must be an object (a run config)")
    values = dict(data.get(section) or {})
    values.update({field: getattr(args, flag) for flag, field in flags.items() if getattr(args, flag) is not None})
    return RunConfig.from_dict({**data, section: values})


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def _models_dir(args: argparse.Namespace) -> Path:
    """Where ``demo://`` models and converted GGUF files live: ``--models-dir``, else the studio's
    ``$STUDIO_DATA_DIR/models``, else ``var/models`` (the studio's default data directory)."""
    if args.models_dir:
        return Path(args.models_dir)
    return Path(os.environ.get("STUDIO_DATA_DIR") or "var") / "models"


# --- label ------------------------------------------------------------------------------------------


def label(args: argparse.Namespace) -> int:
    """``label``: judge the pairs file and write the judgments file; returns the exit status (1 when every
    judgment failed)."""
    from training.judges import build_judge
    from training.judges.base import JudgeTask
    from training.labeling import MemoryCache, label_tasks, select_principles

    config = run_config(args, "judge", JUDGE_FLAGS).judge
    constitution = load_constitution(Path(args.constitution))
    pairs = read_jsonl(Path(args.pairs), ("prompt", "response_a", "response_b"))
    principles = constitution["principles"]
    tasks = []
    for index, pair in enumerate(pairs):
        # the draw depends on (seed, key): the pair's own id where it has one, else its line's position
        key = pair.get("id", index)
        for principle in select_principles(principles, key, mode=config.principle_sampling, seed=config.seed):
            tasks.append(JudgeTask((index, principle["id"]), pair["prompt"], str(pair["response_a"]),
                                   str(pair["response_b"]), principle["comparison"]))
    reporter = PrintReporter()
    if config.model.startswith("demo://"):
        from training.demo_models import ensure_demo_models

        ensure_demo_models(_models_dir(args), reporter)
    judge = build_judge(config, _models_dir(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = {"judged": 0, "failed": 0, "A": 0, "B": 0, "tie": 0}
    try:
        with out.open("w", encoding="utf-8") as handle:
            for batch in label_tasks(
                judge, tasks, template=constitution["judge_template"], examples=constitution["few_shot_examples"],
                config=config, reporter=reporter, cache=MemoryCache(), allow_ties=constitution["allow_ties"],
            ):
                for judged in batch:
                    index, principle_id = judged.key
                    row = judgment_row(pairs[index], index, principles[principle_id]["name"], judged)
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    counts["judged"] += 1
                    counts[judged.verdict or "failed"] += 1
    finally:
        judge.close()
    print(f"{counts['judged']} judgments of {len(pairs)} pairs written to {out}: A {counts['A']}, B {counts['B']}, "
          f"tie {counts['tie']}, failed {counts['failed']}")
    return 1 if counts["judged"] and counts["failed"] == counts["judged"] else 0


def judgment_row(pair: dict, index: int, principle: str, judged) -> dict:
    """One line of the judgments file: the pair's ``id`` (its line index when it has none), the principle's
    name, P(A) in each order (B/A mapped back to A) and averaged, the verdict (``""`` when it failed), whether
    the orders agreed, the rationale, the error and the cost."""
    return {
        "id": pair.get("id", index),
        "principle": principle,
        "p_a_ab": judged.p_a_ab,
        "p_a_ba": judged.p_a_ba,
        "p_a": judged.p_a,
        "verdict": judged.verdict,
        "position_consistent": judged.position_consistent,
        "rationale": judged.rationale,
        "error": judged.error,
        "cost": judged.cost,
    }


# --- reward-model -----------------------------------------------------------------------------------


def reward_model(args: argparse.Namespace) -> int:
    """``reward-model``: train on the preferences file, save the model, print the held-out accuracy."""
    from datasets import Dataset

    from training.modeling import resolve
    from training.reward_model import train_reward_model

    config = run_config(args, "reward_model", REWARD_MODEL_FLAGS).reward_model
    rows = read_jsonl(Path(args.preferences), ("prompt", "chosen", "rejected"))
    columns = ["prompt", "chosen", "rejected"] + (["margin"] if all("margin" in r for r in rows) else [])
    held_out = held_out_prompts([_prompt_key(r) for r in rows], config.eval_ratio, config.seed)
    train = [{c: r[c] for c in columns} for r in rows if _prompt_key(r) not in held_out]
    evaluation = [{c: r[c] for c in columns} for r in rows if _prompt_key(r) in held_out]
    reporter = PrintReporter()
    reporter.log(f"reward model: {len(train)} train / {len(evaluation)} eval pairs, base {config.base_model}")
    result = train_reward_model(
        Dataset.from_list(train),
        resolve(config.base_model, _models_dir(args)),
        config,
        Path(args.out),
        eval_dataset=Dataset.from_list(evaluation) if evaluation else None,
        reporter=reporter,
        checkpoint_every=config.checkpoint_every,
        max_steps=args.max_steps,
    )
    accuracy = result.metrics.get("eval_accuracy")
    shown = f"{accuracy:.3f}" if accuracy is not None and math.isfinite(accuracy) else "n/a (no held-out pairs)"
    print(f"reward model saved to {result.path}")
    print(f"eval accuracy: {shown} on {len(evaluation)} held-out pairs")
    return 0


def held_out_prompts(prompt_keys: Sequence[str], eval_ratio: float, seed: int) -> set[str]:
    """The prompts held out for evaluation: ``round(eval_ratio × prompts)`` of the distinct prompts after a
    seeded shuffle (none with a single prompt), so no held-out prompt is trained on; the reward-model stage
    splits the same way."""
    keys = sorted(set(prompt_keys))
    random.Random(seed).shuffle(keys)
    return set(keys[: int(round(len(keys) * eval_ratio)) if len(keys) > 1 else 0])


def _prompt_key(row: dict) -> str:
    return str(row["prompt_id"]) if "prompt_id" in row else json.dumps(row["prompt"], sort_keys=True)


# --- the command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m training`` argument parser with its ``label`` and ``reward-model`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="RLAIF Studio's labeling and reward-model training on files, without Django or Redis.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    lab = commands.add_parser("label", help="judge preference pairs under a constitution (JSONL in, JSONL out)")
    lab.add_argument("--pairs", required=True, help="JSONL: prompt (text or chat messages), response_a, response_b")
    lab.add_argument("--constitution", required=True, help="constitution file (YAML or JSON, the export schema)")
    lab.add_argument("--out", required=True, help="where to write the judgments (JSONL)")
    lab.add_argument("--config", help="a run config (JSON or YAML) whose judge section is used; flags override")
    lab.add_argument("--backend", help="judge.backend: openai, transformers, reward_model or likelihood")
    lab.add_argument("--model", help="judge.model: hub id, local path, demo://judge, gemma-3-270m ...")
    lab.add_argument("--base-url", help="judge.base_url of an OpenAI-compatible endpoint")
    lab.add_argument("--api-key-env", help="judge.api_key_env: the name of the variable holding the key")
    lab.add_argument("--api", choices=("chat", "completions"), help="judge.api: the endpoint's route")
    lab.add_argument("--tie-margin", type=float, help="judge.tie_margin: |P(A) - 0.5| <= margin is a tie")
    lab.add_argument("--seed", type=int, help="judge.seed: the principle-sampling seed")
    lab.add_argument("--principle-sampling", choices=("sample", "all"), help="judge.principle_sampling")
    lab.add_argument("--concurrency", type=int, help="judge.concurrency (openai backend)")
    lab.add_argument("--max-new-tokens", type=int, help="judge.max_new_tokens")
    lab.add_argument("--models-dir", help="folder of demo:// and converted GGUF models (default "
                                          "$STUDIO_DATA_DIR/models, else var/models)")
    lab.set_defaults(func=label)

    rm = commands.add_parser("reward-model", help="train a Bradley-Terry reward model on a preference JSONL")
    rm.add_argument("--preferences", required=True, help="JSONL in TRL's format: prompt, chosen, rejected")
    rm.add_argument("--out", required=True, help="output folder (checkpoints/ and model/)")
    rm.add_argument("--config", help="a run config (JSON or YAML) whose reward_model section is used")
    rm.add_argument("--base-model", help="reward_model.base_model: minilm, a hub id or a local path")
    rm.add_argument("--epochs", type=float, help="reward_model.epochs")
    rm.add_argument("--batch-size", type=int, help="reward_model.batch_size")
    rm.add_argument("--learning-rate", type=float, help="reward_model.learning_rate")
    rm.add_argument("--max-length", type=int, help="reward_model.max_length (tokens per pair)")
    rm.add_argument("--eval-ratio", type=float, help="reward_model.eval_ratio: share of prompts held out")
    rm.add_argument("--seed", type=int, help="reward_model.seed: split and training seed")
    rm.add_argument("--max-steps", type=int, help="cap on optimizer steps (overrides epochs)")
    rm.add_argument("--models-dir", help="folder of demo:// and converted GGUF models")
    rm.set_defaults(func=reward_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns the exit status (2 with a message on stderr for bad input or config)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
