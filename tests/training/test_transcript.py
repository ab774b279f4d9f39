"""The transcript format for base models: rendering, cutting an answer at the next turn marker, the BOS
prefix, and the turn-marker tokens that end an RL rollout."""
from __future__ import annotations

import pytest

from training import transcript
from training.policy import rollout_policy, trimmed_reward


def test_render_is_the_hh_rlhf_transcript_ending_with_the_assistant_marker():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "How are you?"},
    ]
    assert transcript.render(messages) == "Human: Hi\n\nAssistant: Hello.\n\nHuman: How are you?\n\nAssistant:"
    with pytest.raises(ValueError, match="message 0: unknown role 'tool'"):
        transcript.render([{"role": "tool", "content": "x"}])


@pytest.mark.parametrize(
    ("generated", "answer"),
    [
        (" Fine, thanks.\n\nHuman: And you?\n\nAssistant: Good.", "Fine, thanks."),
        (" Sure.\nAssistant: more", "Sure."),
        (" Stopped by the marker token\n\nHuman", "Stopped by the marker token"),
        ("Human: an invented turn", ""),
        (" Human rights matter to everyone.", "Human rights matter to everyone."),
        (" No marker here. ", "No marker here."),
    ],
)
def test_trim_cuts_the_answer_before_the_next_turn(generated, answer):
    assert transcript.trim(generated) == answer


@pytest.mark.slow
def test_base_model_tokenizer_gets_turn_tokens_and_a_rollout_policy_that_stops_at_them(tiny_lm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    assert not transcript.uses_transcript(tokenizer)
    assert rollout_policy(str(tiny_lm_dir), tokenizer) == str(tiny_lm_dir)  # chat model: TRL loads it as is
    tokenizer.chat_template = None
    assert transcript.prompt_format(tokenizer) == transcript.FORMAT
    markers = transcript.turn_token_ids(tokenizer)
    assert markers and all(tokenizer.decode([m]).strip() in transcript.MARKER_WORDS for m in markers)
    full = tokenizer.encode("\n\nHuman:", add_special_tokens=False)
    assert set(full) & set(markers)
    model = rollout_policy(str(tiny_lm_dir), tokenizer)
    eos = model.generation_config.eos_token_id
    assert tokenizer.eos_token_id in eos and set(markers) <= set(eos)


def test_trimmed_reward_scores_the_answer_without_the_invented_turn_or_the_bos_text():
    seen = {}

    def reward_fn(prompts=None, completions=None, **kwargs):
        seen.update(prompts=prompts, completions=completions)
        return [float(len(c)) for c in completions]

    wrapped = trimmed_reward(reward_fn, "<bos>")
    scores = wrapped(prompts=["<bos>Human: Hi\n\nAssistant:"], completions=[" Hello!\n\nHuman"])
    assert seen == {"prompts": ["Human: Hi\n\nAssistant:"], "completions": ["Hello!"]}
    assert scores == [6.0]
    assert wrapped.__name__ == "reward_fn"
