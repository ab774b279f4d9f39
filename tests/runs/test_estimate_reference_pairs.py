"""The launch estimate follows the run's source: a reference-pairs run samples nothing and judges every
imported pair (not degenerate, all splits, capped by generation.max_prompts)."""
import pytest

from runs.estimate import estimate, estimate_for
from runs.models import ReferencePair
from tests import factories
from training.config import RunConfig


def test_reference_pairs_sample_nothing_and_judge_every_pair():
    cfg = RunConfig.from_dict({"generation": {"source": "reference_pairs", "samples_per_prompt": 4,
                                              "pairing": "all"}})
    est = estimate(cfg, train_prompts=50, eval_prompts=10, enabled_principles=3, reference_pairs=37)
    assert (est.prompts, est.responses, est.comparisons, est.generation_tokens) == (37, 0, 37, 0)
    assert est.judge_calls == 37 * 2  # one sampled principle, both orders
    assert "nothing is sampled" in est.warnings[0]
    capped = estimate(RunConfig.from_dict({"generation": {"source": "reference_pairs", "max_prompts": 5}}),
                      train_prompts=50, eval_prompts=0, enabled_principles=3, reference_pairs=37)
    assert capped.comparisons == 5
    none = estimate(RunConfig.from_dict({"generation": {"source": "reference_pairs"}}), train_prompts=5,
                    eval_prompts=0, enabled_principles=3, reference_pairs=0)
    assert none.judge_calls == 0 and "no reference pairs" in none.warnings[0]


@pytest.mark.django_db
def test_estimate_for_counts_the_sets_judgeable_pairs():
    prompt_set = factories.make_prompt_set(n=6, split_every=3)  # eval pairs count too
    for i, prompt in enumerate(prompt_set.prompts.all()):
        ReferencePair.objects.create(prompt=prompt, response_a="a", response_b="b" if i else "a",
                                     degenerate="" if i else "identical")
    cfg = RunConfig.from_dict({"generation": {"source": "reference_pairs"}})
    est = estimate_for(cfg, prompt_set, factories.make_version(), ["generate", "label"])
    assert (est.comparisons, est.responses, est.judge_calls) == (5, 0, 10)
