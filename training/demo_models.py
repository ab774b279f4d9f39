"""Offline demo models: a tiny policy and a tiny judge built from scratch on the demo data, in seconds on
a CPU, with no network.

* ``demo://policy``: a 2-layer GPT-2 with a byte-level BPE tokenizer trained on the demo prompts and short
  answers (:data:`DEMO_DATA`), fine-tuned briefly with SFT so its samples have the shape of an answer.
* ``demo://judge``: the same kind of model with a 128-token context, fine-tuned (600 steps, ~30 s) on the
  ends of judge prompts (the default judge template) whose answer is ``Preferred: A`` or ``Preferred: B``,
  where the preferred response is the demo answer and the other a generic evasive reply, in both orders.

These models only show the wiring of a run: their text is barely language and the judge only tells a real
answer from an evasive one.
For real work, put a hub id or local path in the run config (``generation.model``, ``judge.model``,
``reward_model.base_model``; e.g. ``Qwen/Qwen2.5-0.5B-Instruct``), or use an OpenAI-compatible endpoint
(``backend: openai`` with ``base_url``, e.g. a vLLM server). The reward model's offline default is the real
all-MiniLM-L6-v2 encoder (``minilm``).
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from training import transcript
from training.chat import as_messages
from training.config import SFTConfig
from training.judge_prompt import DEFAULT_TEMPLATE, render
from training.modeling import demo_path
from training.progress import NullReporter, Reporter
from training.sft import Demonstration, train_sft
from training.tiny_models import build_causal_lm

DEMO_DATA = Path(__file__).with_name("demo_data.jsonl")
DEMO_MODELS = ("demo://policy", "demo://judge")
EVASIVE = [
    "I don't know.",
    "Maybe. It depends.",
    "Sure, whatever you want.",
    "That is not something I can talk about right now.",
    "Ask someone else.",
]
DEMO_PRINCIPLE = "Which response is more helpful, honest and harmless?"
#: The demo judge's context in tokens: enough for the end of a judge prompt (second response, answer format).
JUDGE_CONTEXT = 128


def demo_examples(path: Path = DEMO_DATA) -> list[Demonstration]:
    """The demo prompts with their short answers (``{"prompt", "response"}`` per JSON line)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Demonstration(r["prompt"], r["response"]) for r in rows]


def judge_examples(examples: list[Demonstration], seed: int = 0) -> list[Demonstration]:
    """Judge SFT examples: each demo answer against an evasive reply, in both orders."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        bad = rng.choice(EVASIVE)
        for swapped in (False, True):
            request = render(DEFAULT_TEMPLATE, DEMO_PRINCIPLE, ex.prompt, ex.response, bad, swapped=swapped)
            out.append(Demonstration(list(request.messages), f"Preferred: {'B' if swapped else 'A'}"))
    return out


def build_demo_policy(out_dir: Path, reporter: Reporter | None = None, steps: int = 100) -> Path:
    """Build ``demo://policy`` into ``out_dir`` (replacing what is there). Returns ``out_dir``."""
    examples = demo_examples()
    corpus = [f"{transcript.render(e.prompt)} {e.response}" for e in examples]
    return _build(out_dir, corpus, examples, steps, n_positions=256, reporter=reporter, name="policy")


def build_demo_judge(out_dir: Path, reporter: Reporter | None = None, steps: int = 600) -> Path:
    """Build ``demo://judge`` into ``out_dir`` (replacing what is there). Returns ``out_dir``.

    Its context is :data:`JUDGE_CONTEXT` tokens, so (like the transformers judge backend, which cuts long
    prompts from the left) it reads only the end of the judge prompt: the second response and the answer
    format. It learns to prefer the first response when the second is evasive and the second otherwise,
    which gives the same answer in both orders: a weak but content-dependent, position-consistent judge.
    """
    examples = judge_examples(demo_examples())
    corpus = [DEFAULT_TEMPLATE, *[m["content"] for e in examples for m in e.prompt], *EVASIVE]
    return _build(
        out_dir, corpus, examples, steps, n_positions=JUDGE_CONTEXT, reporter=reporter, name="judge",
        prepare=_keep_prompt_ends,
    )


def _keep_prompt_ends(examples: list[Demonstration], model_path: Path) -> list[Demonstration]:
    """Cut each judge prompt from the left so prompt and answer fit :data:`JUDGE_CONTEXT` tokens."""
    from transformers import AutoTokenizer

    from training.generation import prompt_text

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    budget = JUDGE_CONTEXT - 12  # room for the chat template's tail and "Preferred: A<eos>"
    out = []
    for example in examples:
        content = example.prompt[0]["content"]
        ids = tokenizer(content, add_special_tokens=False)["input_ids"]
        overhead = len(tokenizer(prompt_text(tokenizer, ""))["input_ids"])
        keep = max(1, budget - overhead)
        if len(ids) > keep:
            content = tokenizer.decode(ids[-keep:])
        out.append(Demonstration(as_messages(content), example.response))
    return out


def _build(out_dir, corpus, examples, steps, *, n_positions, reporter, name, prepare=None) -> Path:
    reporter = reporter or NullReporter()
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    reporter.log(f"demo models: building {name} (tiny GPT-2, {steps} SFT steps)")
    base = build_causal_lm(work / "base", corpus, n_positions=n_positions, vocab_size=1024, n_layer=2, n_embd=64)
    if prepare is not None:
        examples = prepare(examples, base)
    config = SFTConfig(source="demonstrations", learning_rate=3e-3, batch_size=8)
    result = train_sft(
        examples, str(base), config, work / "sft", reporter=reporter, max_steps=steps, max_length=n_positions
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(result.path), str(out_dir))  # complete folders only: a crash leaves no half-built model
    shutil.rmtree(work, ignore_errors=True)
    return out_dir


class _BuildReporter(NullReporter):
    """Passes log lines and the stop request on, but not the builds' own training steps and metrics: a run
    that builds the demo models on first use must not mix them into its stage's progress and charts."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def log(self, line: str) -> None:
        self.reporter.log(line)

    def should_stop(self) -> bool:
        return self.reporter.should_stop()


def missing_demo_models(models_dir: Path) -> list[str]:
    """The ``demo://`` names not yet built under ``models_dir``."""
    return [name for name in DEMO_MODELS if not (demo_path(name, models_dir) / "config.json").exists()]


def ensure_demo_models(models_dir: Path, reporter: Reporter | None = None, *, force: bool = False) -> list[str]:
    """Build the demo models that are missing under ``models_dir`` (all of them with ``force``).

    Returns:
        The names built (empty when all existed).
    """
    reporter = reporter or NullReporter()
    names = list(DEMO_MODELS) if force else missing_demo_models(models_dir)
    builders = {"demo://policy": build_demo_policy, "demo://judge": build_demo_judge}
    for done, name in enumerate(names):
        reporter.progress(done, len(names), f"building demo model {name}")
        builders[name](demo_path(name, models_dir), _BuildReporter(reporter))
        reporter.log(f"demo models: {name} ready in {demo_path(name, models_dir)}")
    if names:
        reporter.progress(len(names), len(names), "demo models ready")
    return names
