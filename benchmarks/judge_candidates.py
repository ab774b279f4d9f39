"""Offline judge candidates measured against human labels: which local judge should the Gemma preset use?

Judges the first N reference pairs of HH-RLHF harmless-base (test; human chosen vs rejected) and of PandaLM
(test set; majority label of three annotators, ties left out) with the product's labeling protocol
(:func:`training.labeling.label_tasks`: principles of the starter constitution sampled by weight, both orders
where the judge is order-dependent) and prints the audit dashboard's figures (:mod:`training.agreement`):
AI-labeler alignment with its 95% Wilson interval, position consistency, and the "shorter wins" baseline on
the same rows.

Candidates: ``transformers:gemma-3-270m`` (pairwise, the verdict tokens' log-probs), ``likelihood:gemma-3-270m``
(principle-conditioned likelihood, order-invariant) and ``transformers:demo://judge`` (the demo judge).

Usage::

    python benchmarks/judge_candidates.py [--n 60] [--judges transformers:gemma-3-270m,likelihood:gemma-3-270m]

Needs ``../shared/data``; converts Gemma into ``STUDIO_DATA_DIR/models`` (default ``var/``) on first use.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def hh_pairs(n: int) -> list[dict]:
    """HH-RLHF harmless-base test pairs: prompt transcript → chat messages; human label A (chosen first)
    on even rows and B on odd rows, so that a judge always answering A scores 50%."""
    from training.transcript import ROLE_NAMES

    roles = {v: k for k, v in ROLE_NAMES.items()}
    rows = []
    with gzip.open(DATA / "hh-rlhf" / "normalized" / "harmless-base_test.pairs.jsonl.gz", "rt") as handle:
        for line in handle:
            row = json.loads(line)
            if not row["chosen"].strip() or not row["rejected"].strip() or row["chosen"] == row["rejected"]:
                continue
            messages = []
            for chunk in ("\n\n" + row["prompt"].strip()).split("\n\n"):
                for name, role in roles.items():
                    if chunk.startswith(f"{name}: "):
                        messages.append({"role": role, "content": chunk[len(name) + 2 :]})
                        break
                else:
                    if messages and chunk:
                        messages[-1]["content"] += "\n\n" + chunk
            flip = len(rows) % 2 == 1
            a, b = (row["rejected"], row["chosen"]) if flip else (row["chosen"], row["rejected"])
            rows.append({"id": row["id"], "conversation": messages, "a": a.strip(), "b": b.strip(),
                         "human": "B" if flip else "A"})
            if len(rows) >= n:
                break
    return rows


def pandalm_pairs(n: int) -> list[dict]:
    """PandaLM test pairs with a decisive majority label (ties and non-text responses left out)."""
    rows = []
    with open(DATA / "PandaLM" / "normalized" / "pandalm_testset_v1.pairs.jsonl") as handle:
        for line in handle:
            row = json.loads(line)
            if row["label"] not in ("A", "B") or not all(isinstance(row[k], str) for k in ("response_a", "response_b")):
                continue
            rows.append({"id": row["id"], "conversation": row["prompt"], "a": row["response_a"].strip(),
                         "b": row["response_b"].strip(), "human": row["label"]})
            if len(rows) >= n:
                break
    return rows


def measure(judge_spec: str, datasets: dict[str, list[dict]], models_dir: Path, config=None) -> dict[str, dict]:
    """Judge each data set's pairs and print the audit's figures; ``config`` (a ``JudgeConfig``) overrides the
    one built from ``judge_spec`` (``backend:model``). Returns per data set: alignment, its interval, n and
    the failed count."""
    from constitutions.starter import STARTER_PRINCIPLES
    from training.agreement import alignment, position_consistency, proportion
    from training.config import JudgeConfig
    from training.judge_prompt import DEFAULT_TEMPLATE
    from training.judges import JudgeTask, build_judge
    from training.labeling import label_tasks, select_principles
    from training.progress import NullReporter

    if config is None:
        backend, model = judge_spec.split(":", 1)
        config = JudgeConfig(backend=backend, model=model, concurrency=1)
    figures = {}
    began = time.perf_counter()
    judge = build_judge(config, models_dir)
    print(f"{judge_spec}: loaded in {time.perf_counter() - began:.1f} s", flush=True)
    principles = [dict(p, enabled=True) for p in STARTER_PRINCIPLES]
    for name, rows in datasets.items():
        tasks = [
            JudgeTask(key=i, conversation=r["conversation"], response_a=r["a"], response_b=r["b"],
                      principle=select_principles(principles, r["id"], seed=0)[0]["comparison"])
            for i, r in enumerate(rows)
        ]
        began = time.perf_counter()
        judged = [p for batch in label_tasks(judge, tasks, template=DEFAULT_TEMPLATE, examples=(), config=config,
                                             reporter=NullReporter(), batch_size=8) for p in batch]
        seconds = time.perf_counter() - began
        verdicts = [p.verdict for p in judged]
        humans = [r["human"] for r in rows]
        align = alignment(verdicts, humans)
        consistency = position_consistency([p.position_consistent for p in judged])
        shorter = proportion(sum((len(r["a"]) < len(r["b"])) == (r["human"] == "A") for r in rows), len(rows))
        first = sum(v == "A" for v in verdicts) / max(1, len(verdicts))
        pc = f"{consistency.value:.0%} [{consistency.low:.0%},{consistency.high:.0%}]" if consistency.n else \
            "n/a (order-invariant: asked once)"
        print(
            f"{judge_spec} on {name}: alignment {align.value:.1%} [{align.low:.1%},{align.high:.1%}] n={align.n}; "
            f"position consistency {pc}; verdict A {first:.0%}; shorter-wins baseline {shorter.value:.0%}; "
            f"failed {sum(not v for v in verdicts)}; {seconds:.0f} s ({seconds / max(1, len(rows)):.2f} s/pair)",
            flush=True,
        )
        figures[name] = {"alignment": align.value, "low": align.low, "high": align.high, "n": align.n,
                         "failed": sum(not v for v in verdicts), "seconds_per_pair": seconds / max(1, len(rows))}
    for name, reason in (getattr(judge, "dropped", None) or {}).items():
        print(f"{judge_spec}: dropped {name}: {reason}", flush=True)
    close = getattr(judge, "close", None)
    if close:
        close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="pairs per data set")
    parser.add_argument(
        "--judges",
        default="likelihood:gemma-3-270m,transformers:gemma-3-270m,transformers:demo://judge",
        help="comma-separated backend:model",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django
    import torch

    django.setup()
    from django.conf import settings

    torch.manual_seed(0)
    if not DATA.exists():
        sys.exit(f"{DATA} is missing")
    datasets = {"hh-rlhf harmless": hh_pairs(args.n), "PandaLM": pandalm_pairs(args.n)}
    models_dir = Path(settings.MODELS_DIR)
    for spec in args.judges.split(","):
        if "demo://" in spec:
            from training.demo_models import ensure_demo_models

            ensure_demo_models(models_dir)
        measure(spec, datasets, models_dir)


if __name__ == "__main__":
    main()
