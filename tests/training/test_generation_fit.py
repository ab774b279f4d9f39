"""Prompts longer than a small model's context are shortened from the start, keeping the final request."""
from training.generation import fit_conversation, prompt_text
from training.tiny_models import train_tokenizer

TOKENIZER = train_tokenizer(["Human: hello there, how are you?\n\nAssistant: fine thanks"] * 20, vocab_size=300)


def _length(conv) -> int:
    return len(TOKENIZER(prompt_text(TOKENIZER, conv), add_special_tokens=False)["input_ids"])


def test_short_prompt_is_unchanged():
    conv = [{"role": "user", "content": "hello"}]
    assert fit_conversation(TOKENIZER, conv, 100) == conv


def test_oldest_turns_are_dropped_and_the_last_request_kept():
    conv = [
        {"role": "user", "content": "first question " * 20},
        {"role": "assistant", "content": "first answer " * 20},
        {"role": "user", "content": "the final request"},
    ]
    fitted = fit_conversation(TOKENIZER, conv, _length(conv[-1:]) + 5)
    assert fitted == conv[-1:]


def test_a_single_long_turn_is_cut_from_its_start():
    text = "word " * 300 + "what is the answer?"
    fitted = fit_conversation(TOKENIZER, text, 60)
    assert isinstance(fitted, str) and fitted.endswith("what is the answer?")
    assert _length(fitted) <= 60
