"""LoRA against a full fine-tune for the policy: peak memory and seconds per RLOO step on the CPU.

A GPT-2 shaped model of about 8M parameters (4 layers, 384 wide, built locally by
:func:`training.tiny_models.build_causal_lm`, no download) is tuned with :func:`training.policy.train_policy`
(RLOO, KL coefficient 0.05, the same prompts, reward, seed and steps) twice: ``policy.lora_rank`` 0 (every weight
trains; TRL keeps a second, frozen copy of the model as the reference) and ``lora_rank`` 8 on ``c_attn`` (only
the adapters train; the reference is the same model with its adapters disabled, so no copy).

Memory is the **resident set size** (RSS) growth of the process: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
(the process's peak RSS, KiB on Linux) at the end, less the same figure just before ``train_policy`` is called
(after the imports). RSS, not ``tracemalloc``: tracemalloc sees only Python's allocator, while weights, gradients,
optimizer state and activations are torch tensors allocated in C++. Each variant runs in a subprocess of its
own, so one variant's peak (and the allocator's cached pages) cannot count towards the other's.

Seconds per step are taken between the first and the last logged step (the reporter's ``metric`` calls, one per
optimizer step), so loading the model, building the trainer and the first step are not counted.

Usage::

    python benchmarks/lora_memory.py [--steps 8] [--rank 8]

The last line reads ``peak_mb_full=… peak_mb_lora=… s_step_full=… s_step_lora=…``.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = [
    f"Human: Question {i} about the weather, the sea, the hills and the trains?\n\nAssistant: "
    f"Sure, here is answer number {i}: the sea is calm, the hills are green and the trains run late."
    for i in range(200)
]
PROMPTS = [f"Question {i} about the sea and the hills?" for i in range(32)]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def letter_reward(prompts, completions, **kwargs) -> list[float]:
    """A cheap reward: the share of letters in the completion (no model, so only the policy is measured)."""
    return [sum(ch.isalpha() for ch in str(c)) / max(1, len(str(c))) for c in completions]


def run_variant(model: str, rank: int, steps: int, out: str) -> dict[str, float]:
    """Tune ``model`` with RLOO for ``steps`` steps (``rank`` 0 = full fine-tune) and measure it, in this process."""
    from training.config import PolicyConfig
    from training.policy import train_policy
    from training.progress import NullReporter

    class StepClock(NullReporter):
        def __init__(self) -> None:
            self.times: dict[int, float] = {}

        def metric(self, step, values) -> None:
            if "reward" in values:  # a training step's log (not the end-of-training summary)
                self.times.setdefault(step, time.perf_counter())

    config = PolicyConfig(
        algorithm="rloo", beta=0.05, learning_rate=1e-4, steps=steps, batch_size=8, num_generations=2,
        max_new_tokens=16, checkpoint_every=10_000, lora_rank=rank, lora_target_modules="c_attn" if rank else "",
    )
    clock = StepClock()
    before = peak_rss_mb()
    train_policy(config, model, Path(out), prompts=PROMPTS, reward_fn=letter_reward, reporter=clock)
    peak = peak_rss_mb() - before
    times = [clock.times[step] for step in sorted(clock.times)]
    per_step = (times[-1] - times[0]) / max(1, len(times) - 1)
    return {"peak_mb": round(peak, 1), "s_step": round(per_step, 3), "steps": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank of the LoRA variant")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # child process: full or lora
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:
        import warnings

        warnings.filterwarnings("ignore")
        rank = args.rank if args.variant == "lora" else 0
        print(json.dumps(run_variant(args.model, rank, args.steps, args.out)))
        return

    from training.tiny_models import build_causal_lm

    with tempfile.TemporaryDirectory() as tmp:
        model = build_causal_lm(Path(tmp) / "lm", CORPUS, n_layer=4, n_embd=384, n_head=6, n_positions=256,
                                vocab_size=2000)
        import torch  # noqa: F401 - after the build, for the parameter count only
        from transformers import AutoModelForCausalLM

        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model).parameters())
        print(f"model: GPT-2 shaped, {params / 1e6:.1f}M parameters; RLOO, {args.steps} steps, batch 8, "
              f"2 rollouts per prompt, 16 new tokens, beta 0.05")
        results = {}
        for variant in ("full", "lora"):
            child = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--model", str(model), "--steps", str(args.steps),
                 "--rank", str(args.rank), "--out", str(Path(tmp) / variant)],
                capture_output=True, text=True, check=False,
            )
            lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
            if child.returncode or not lines:
                sys.exit(f"{variant} failed:\n{child.stderr[-3000:]}")
            results[variant] = json.loads(lines[-1])
            print(f"{variant}: {results[variant]}")
    full, lora = results["full"], results["lora"]
    print(
        f"peak_mb_full={full['peak_mb']:.1f} peak_mb_lora={lora['peak_mb']:.1f} "
        f"s_step_full={full['s_step']:.3f} s_step_lora={lora['s_step']:.3f}"
    )


if __name__ == "__main__":
    main()
