"""Fixtures for the AI-feedback tests (generation, judges, labeling): tiny models built on the spot and a
chat-completions server on 127.0.0.1. Import the fixtures you use into the test module."""

from __future__ import annotations

import pytest

from benchmarks.fake_openai_server import FakeChatServer

CORPUS = [
    "Human: What is the capital of France?\n\nAssistant: The capital of France is Paris.",
    "Human: Which response is more helpful? Response A: yes. Response B: no. Preferred: A",
    "Preferred: B because Response B is honest and harmless.",
    "You are a careful evaluator comparing two responses from an AI assistant.",
    "Judge them against this principle: Which response is more honest? Conversation: Prompt number 1?",
] * 4


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    """A tiny GPT-2 causal LM with a chat template (policy and transformers judge)."""
    from training.tiny_models import build_causal_lm

    return build_causal_lm(tmp_path_factory.mktemp("tiny-lm"), CORPUS, n_positions=512, seed=1)


@pytest.fixture(scope="session")
def tiny_rm_dir(tiny_lm_dir, tmp_path_factory):
    """A tiny GPT-2 sequence-classification reward model (one logit) sharing the LM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(3)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    config = GPT2Config.from_pretrained(tiny_lm_dir)
    config.num_labels = 1
    config.pad_token_id = tokenizer.pad_token_id
    model = GPT2ForSequenceClassification(config)
    out = tmp_path_factory.mktemp("tiny-rm")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def chat_server():
    """A running :class:`FakeChatServer`; ``chat_server.url`` is the base URL."""
    with FakeChatServer(slow_s=1.5) as server:
        yield server
