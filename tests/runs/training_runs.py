"""Runs with AI judgments on tiny models, for the training-stage tests."""
from __future__ import annotations

import random

from runs.models import Prompt
from tests import factories
from training.config import JudgeConfig
from training.judges import judge_id_for

WORDS = "sea hills weather bread music trains maps rivers stars tea".split()


def answers(rng: random.Random) -> tuple[str, str]:
    """A (good, bad) pair: the good answer says "kindly", the bad one "rudely", amid random filler."""
    filler = lambda: " ".join(rng.choice(WORDS) for _ in range(3))  # noqa: E731
    return f"{filler()} kindly {filler()}", f"{filler()} rudely {filler()}"


def labelled_run(model_path: str, *, n: int = 24, stages=("reward_model",), config: dict | None = None, seed=0):
    """A run over ``n`` prompts (every 4th in the eval split) whose train comparisons the judge decided for
    the "kindly" answer, shown as A or B alternately, with p_a 0.9 / 0.1."""
    rng = random.Random(seed)
    judge = {"backend": "transformers", "model": model_path}
    full = {"generation": {"model": model_path}, "judge": judge, **(config or {})}
    prompt_set = factories.make_prompt_set(n, split_every=4)
    run = factories.make_run(stages=stages, config=full, prompt_set=prompt_set)
    principle = run.constitution_version.principles.first()
    judge_id = judge_id_for(JudgeConfig(**judge))
    for i, prompt in enumerate(Prompt.objects.filter(prompt_set=prompt_set).order_by("index")):
        good, bad = answers(rng)
        good_first = i % 2 == 0
        comparison = factories.make_comparison(run, prompt, texts=(good, bad) if good_first else (bad, good))
        factories.make_judgment(comparison, principle, p_a=0.9 if good_first else 0.1, judge_id=judge_id)
    return run
