"""Tiny causal LMs for the training tests (random GPT-2 + BPE tokenizer trained on a small corpus, ~1 s)."""
from __future__ import annotations

from pathlib import Path

from training.tiny_models import build_causal_lm

CORPUS = [
    f"Human: Question {i} about the weather, the sea and the hills?\n\nAssistant: "
    f"Sure, kindly here is an answer number {i}. No, go away."
    for i in range(60)
]


def tiny_lm(path: Path, n_positions: int = 256) -> Path:
    """Build (once per folder) a 2-layer GPT-2 with a 300-token vocabulary and a chat template."""
    path = Path(path)
    if not (path / "config.json").exists():
        build_causal_lm(path, CORPUS, n_positions=n_positions, vocab_size=300)
    return path
