"""rep-n (Welleck et al. 2020) on known texts, and the repetition penalty handed to TRL with a negative weight."""
import pytest

from training.config import PolicyConfig
from training.degeneracy import mean_rep_n, rep_n, repetition_reward
from training.policy import reward_functions


def test_rep_n_is_zero_for_fresh_text_and_near_one_for_a_repeated_gram():
    assert rep_n("Walk the dog in the evening and keep a routine.") == 0.0
    # "< em >" six times: 18 tokens, 16 trigrams, 3 distinct
    assert rep_n("<em>" * 6) == pytest.approx(1 - 3 / 16)
    assert rep_n("I think that " * 6) == pytest.approx(1 - 3 / 16)
    assert rep_n("yes yes") == 0.0  # fewer tokens than n: no n-gram
    assert rep_n("   ") == 1.0  # an empty answer is degenerate
    assert rep_n("a a a a", n=1) == pytest.approx(0.75)
    assert mean_rep_n(["fresh words here", "<em>" * 6]) == pytest.approx((0 + 1 - 3 / 16) / 2)
    assert mean_rep_n([]) == 0.0
    with pytest.raises(ValueError, match="n must be at least 1"):
        rep_n("x", n=0)


def test_repetition_reward_reads_text_and_chat_completions():
    completions = ["<em>" * 6, [{"role": "assistant", "content": "Fresh words only here."}]]
    assert repetition_reward(prompts=["p", "p"], completions=completions) == [pytest.approx(1 - 3 / 16), 0.0]
    assert repetition_reward.__name__ == "repetition"


def test_reward_functions_add_the_penalty_with_a_negative_weight():
    def main(prompts=None, completions=None, **kw):
        return [1.0] * len(completions)

    assert reward_functions(PolicyConfig(), main) == ([main], None)
    funcs, weights = reward_functions(PolicyConfig(repetition_penalty=0.5), main)
    assert funcs == [main, repetition_reward] and weights == [1.0, -0.5]
