"""Pre-flight: everything a run needs, checked before anything is enqueued, in parallel, within seconds.

A run that fails hours in, after generation and labeling were paid for, because a model name was wrong, a
tokenizer has no padding token or an endpoint is down, is the most expensive way to learn it. :func:`preflight`
checks every part the chosen stages will use and returns every problem at once, each with the dotted config
path it belongs to (``judge.base_url``), plus the fallbacks the run will take (a tokenizer without a chat
template is prompted in the Human/Assistant transcript format; a missing pad token is set to EOS), which the
launch records on the run.

Checks:

* each named model: a local path or GGUF file present and readable, a packaged or ``demo://`` model available
  (or buildable), a hub id cached here or the hub reachable from this server;
* each local model's tokenizer: pad or EOS token (padding needs one), chat template (or the transcript
  fallback), and positions against the configured lengths;
* each OpenAI-compatible endpoint: one ``GET /models`` answering and serving the named model
  (:func:`training.openai_http.probe_endpoint`), with its key variable allowed and set;
* a panel of judges (``judge.panel``): each judge's model or endpoint like the run's judge, under its entry's
  path (``judge.panel[1].base_url``);
* each trained stage launched with ``accelerate`` (:func:`training.launcher.launch_problems`): its accelerate config
  file present and readable here, at least one process, one machine;
* stage combinations: a stage whose input no chosen stage produces (RLOO/GRPO need the reward_model stage unless
  ``policy.reward_source`` is ``judge``, whose judge is then checked like the label stage's).

Plain Python, no Django: the launch form and ``launch_run`` call it through ``runs/forms.py``.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from training.config import JudgeConfig, RunConfig
from training.generation_backends import generation_backend
from training.judges import judge_backend
from training.launcher import launch_problems
from training.redaction import KeyNameError, check_key_name, redact

#: The whole pre-flight answers within this many seconds; a check still running then is reported as slow.
DEADLINE_S = 8.0
#: Stages that load the policy model locally (transformers backend).
POLICY_STAGES = ("generate", "sft", "policy", "evaluate")
#: Stage -> the stages whose output it needs (one of them suffices), unless the run's config says otherwise.
NEEDS = {
    "label": ("generate",),
    "reward_model": ("label",),
    "evaluate": ("policy",),
}


@dataclass
class Preflight:
    """What the pre-flight found.

    Attributes:
        problems: ``(config path, message)`` pairs; the run must not start while there is one.
        fallbacks: ``{config path: what the run will do instead}`` (recorded on the run).
        seconds: how long the checks took.
    """

    problems: list[tuple[str, str]] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ModelUse:
    """One model a run will load: its config path, name, and the lengths it must hold (tokens)."""

    path: str
    name: str
    needs_padding: bool = True
    lengths: tuple[tuple[str, int], ...] = ()


def judge_stages(config: RunConfig, stages: Iterable[str]) -> set[str]:
    """The chosen stages that call the judge: label, evaluate, and the policy stage when the judge is its reward."""
    stages = set(stages)
    calling = stages & {"label", "evaluate"}
    if "policy" in stages and config.policy.learns_from == "judge":
        calling.add("policy")
    return calling


def judges_called(config: RunConfig, stages: Iterable[str]) -> list[tuple[str, JudgeConfig]]:
    """``(config path, judge)`` of each judge the chosen stages call: the run's judge (``judge``) when any
    stage calls it (:func:`judge_stages`), and each judge of its panel (``judge.panel[i]``) when label or
    evaluate does (the policy stage's direct reward asks the run's judge alone)."""
    calling = judge_stages(config, stages)
    if not calling:
        return []
    members = config.judge.members() if calling & {"label", "evaluate"} else [config.judge]
    return [("judge" if i == 0 else f"judge.panel[{i - 1}]", member) for i, member in enumerate(members)]


def model_uses(config: RunConfig, stages: Iterable[str]) -> list[ModelUse]:
    """The models the chosen stages load locally, with the lengths each must fit."""
    stages = set(stages)
    uses = []
    gen = config.generation
    policy_loaded = (
        (stages & {"sft", "policy", "evaluate"})
        or ("generate" in stages and gen.source == "policy" and generation_backend(gen.backend).local_model)
    )
    if policy_loaded:
        lengths = [("generation.max_new_tokens", gen.max_new_tokens)]
        if "policy" in stages:
            lengths.append(("policy.max_new_tokens", config.policy.max_new_tokens))
        if "evaluate" in stages:
            lengths.append(("evaluation.max_new_tokens", config.evaluation.max_new_tokens))
        uses.append(ModelUse("generation.model", gen.model, True, tuple(lengths)))
    for path, judge in judges_called(config, stages):
        judging = judge_backend(judge.backend)
        if judging.local_model:
            uses.append(ModelUse(f"{path}.model", judge.model, judging.needs_padding))
    if stages & {"reward_model"} or ("policy" in stages and config.policy.learns_from == "reward_model"):
        uses.append(ModelUse("reward_model.base_model", config.reward_model.base_model, True,
                             (("reward_model.max_length", config.reward_model.max_length),)))
    return uses


def check_model(use: ModelUse, models_dir: Path, *, hub_reason: Callable[[], str]) -> tuple[list, dict]:
    """Problems and fallbacks of one model use (see the module docstring). Never downloads or converts."""
    from training import modeling

    problems: list[tuple[str, str]] = []
    fallbacks: dict[str, str] = {}
    name = use.name
    try:
        modeling.check_model(name)
    except modeling.ModelNotFound as exc:
        return [(use.path, str(exc))], {}
    if modeling.is_demo(name):
        return [], {}  # built by the worker on first use (the demo preset's own models)
    local = _local_folder(name, models_dir)
    if local is None:
        if _is_gguf(name):
            return [], {}  # a valid GGUF file (checked above); converted once by the worker
        if not _in_hub_cache(name):
            reason = hub_reason()
            if reason:
                problems.append((use.path, f"{name} is not a local path, not in this machine's model cache, "
                                           f"and the hub cannot be reached: {reason}"))
        return problems, fallbacks
    return _check_tokenizer(use, local)


def _check_tokenizer(use: ModelUse, folder: str) -> tuple[list, dict]:
    from transformers import AutoConfig, AutoTokenizer

    problems: list[tuple[str, str]] = []
    fallbacks: dict[str, str] = {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure is this model's problem
        detail = f"{type(exc).__name__}: {redact(str(exc))[:300]}"
        return [(use.path, f"{use.name}: its tokenizer does not load ({detail})")], {}
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            if use.needs_padding:
                problems.append((use.path, f"{use.name}: its tokenizer has neither a padding nor an end-of-sequence "
                                           "token, so batches cannot be padded; use a tokenizer that has one"))
        else:
            fallbacks[use.path + ".pad_token"] = f"pad token = EOS ({tokenizer.eos_token!r})"
    if use.path == "generation.model" and not getattr(tokenizer, "chat_template", None):
        fallbacks[use.path + ".prompt_format"] = "no chat template: prompts rendered as a Human/Assistant transcript"
    try:
        model_config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception:  # noqa: BLE001 - a tokenizer-only folder: nothing more to check
        return problems, fallbacks
    positions = None
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(model_config, attr, None) or getattr(getattr(model_config, "text_config", None), attr, None)
        if isinstance(value, int) and value > 0:
            positions = value - 2 if "roberta" in str(getattr(model_config, "model_type", "")) else value
            break
    if positions:
        for path, length in use.lengths:
            if path == "reward_model.max_length":  # the whole scored sequence must fit
                if length > positions:
                    problems.append((path, f"is {length}, but the base model {use.name} has {positions} positions; "
                                           f"at most {positions}"))
            elif length >= positions:  # new tokens after a prompt of at least one token
                problems.append((path, f"is {length}, but {use.name} holds {positions} positions in all "
                                       f"(prompt included); use at most {positions - 1}"))
    return problems, fallbacks


def _is_gguf(name: str) -> bool:
    from training.gguf_cache import is_gguf

    return is_gguf(name)


def _local_folder(name: str, models_dir: Path) -> str | None:
    """The folder a name loads from without the network, or None (hub ids not on disk, GGUF files)."""
    from training import modeling

    if _is_gguf(name):
        return None
    try:
        resolved = modeling.resolve(name, models_dir)
    except modeling.ModelNotFound:
        return None
    return resolved if Path(resolved).is_dir() else None


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id: not cached
        return False
    return isinstance(found, str)


def check_endpoint(path: str, base_url: str, model: str, key_env: str) -> list[tuple[str, str]]:
    """Problems of one OpenAI-compatible endpoint: its key variable, then one ``GET /models``."""
    from training.openai_http import probe_endpoint

    if key_env:
        section = path.rsplit(".", 1)[0]
        try:
            check_key_name(key_env)
        except KeyNameError as exc:
            return [(f"{section}.api_key_env", str(exc))]
        if not os.environ.get(key_env):
            return [(f"{section}.api_key_env", f"{key_env} is not set in this server's environment "
                                               "(set it here and on every worker)")]
    problem = probe_endpoint(base_url, model, key_env)
    return [(path, problem)] if problem else []


def stage_problems(config: RunConfig, stages: Iterable[str]) -> list[tuple[str, str]]:
    """Stages whose input none of the chosen stages produces (a run's stages start from nothing)."""
    stages = list(stages)
    problems = []
    for stage in stages:
        needed = NEEDS.get(stage)
        if needed and not set(needed) & set(stages):
            problems.append(("stages", f"{stage} needs the output of {' or '.join(needed)}, which is not selected"))
    if "policy" in stages and config.policy.learns_from == "reward_model" and "reward_model" not in stages:
        problems.append(("stages", f"policy with {config.policy.algorithm} needs a reward model: select reward_model "
                                   "(or set policy.reward_source judge, which scores the rollouts with the judge, or "
                                   "use policy.algorithm dpo, which trains on the preferences directly)"))
    if "policy" in stages and config.policy.algorithm == "dpo" and "label" not in stages:
        problems.append(("stages", "policy with dpo trains on the AI preferences: select label"))
    return problems


def preflight(
    config: RunConfig,
    stages: Iterable[str],
    models_dir: Path,
    *,
    hub_reason: Callable[[], str] | None = None,
    deadline_s: float = DEADLINE_S,
) -> Preflight:
    """Check everything the chosen stages need, in parallel threads, and return every problem at once.

    Args:
        config: the validated run config.
        stages: the stages the run will execute.
        models_dir: the data directory's models folder (``demo://`` and GGUF caches).
        hub_reason: returns why the hub is unreachable ("" when it answers); called at most once.
        deadline_s: overall time limit; a check still running then is reported as too slow to verify.

    Returns:
        A :class:`Preflight` with problems (path, message) and fallbacks.
    """
    import threading
    import time

    stages = list(stages)
    started = time.monotonic()
    result = Preflight(problems=stage_problems(config, stages) + launch_problems(config, stages))
    hub_lock, hub_answer = threading.Lock(), {}

    def hub_once() -> str:
        with hub_lock:
            if "reason" not in hub_answer:
                hub_answer["reason"] = (hub_reason or _default_hub_reason)()
            return hub_answer["reason"]

    jobs: dict[str, Callable[[], tuple[list, dict]]] = {}
    for use in model_uses(config, stages):
        jobs.setdefault(use.path, lambda use=use: check_model(use, models_dir, hub_reason=hub_once))
    gen = config.generation
    if generation_backend(gen.backend).needs_endpoint and gen.source == "policy" and set(stages) & {"generate"}:
        jobs["generation.base_url"] = lambda: (check_endpoint("generation.base_url", gen.base_url, gen.model,
                                                              gen.api_key_env), {})
    for path, judge in judges_called(config, stages):
        if judge_backend(judge.backend).needs_endpoint:
            jobs[f"{path}.base_url"] = lambda path=path, judge=judge: (check_endpoint(
                f"{path}.base_url", judge.base_url, judge.model, judge.api_key_env), {})
    if jobs:
        pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="preflight")
        futures = {pool.submit(fn): path for path, fn in jobs.items()}
        done, pending = wait(futures, timeout=deadline_s)
        for future in done:
            try:
                problems, fallbacks = future.result()
            except Exception as exc:  # noqa: BLE001 - a check that breaks is itself a problem to show
                problems, fallbacks = [(futures[future], f"could not be checked: {type(exc).__name__}: {exc}")], {}
            result.problems.extend(problems)
            result.fallbacks.update(fallbacks)
        for future in pending:
            result.problems.append((futures[future], f"could not be checked within {deadline_s:g} s"))
        pool.shutdown(wait=False, cancel_futures=True)
    result.problems.sort()
    result.seconds = time.monotonic() - started
    return result


def _default_hub_reason() -> str:
    from training.hub import hub_offline_reason

    return hub_offline_reason()
