"""The Gemma 3 270M preset end to end on HH-RLHF prompts, headless: does the RL stage teach a real model?

Imports the first N prompts of HH-RLHF harmless-base (test) with ``manage.py import_prompts``, launches the
``gemma-cpu`` preset with ``manage.py launch_run`` (the starter constitution) and runs every stage through an
RQ burst worker, as ``studio`` would. Prints each stage's wall time, then the judge's win rate of the tuned
policy over the reference on held-out prompts with its 95% Wilson interval, the mean reward-model score of
both, the final KL, and three sample prompts with both policies' answers. The last line is
``win_rate=… ci=[…,…] kl=… minutes=…`` (minutes: the loop's wall time).

Before the loop (unless ``--no-compare``) it measures, side by side on Gemma with the same settings: the
product's :func:`training.generation.generate` against a bare ``model.generate`` (new tokens per second and
their ratio), and one RLOO step of :func:`training.policy.train_policy` against a bare TRL ``RLOOTrainer``
(seconds per step, timed between the first and second logged step, and their ratio).

Usage::

    python benchmarks/real_model_loop.py [--prompts 200] [--eval-prompts 40] [--steps 60] [--no-compare]
                                         [--models-cache var/models]

Uses a fresh SQLite database and data folder in a temporary directory; the converted Gemma is taken from
(and stored into) ``--models-cache``/gguf so that it is converted once. Needs ``../shared/data``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HH = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"


def compare_generation(models_dir: Path, conversations: list, batch: int = 4, new_tokens: int = 32) -> None:
    """Product generation against bare ``model.generate`` (same prompts, sampling, stop strings, seed)."""
    import torch

    from training import transcript
    from training.config import GenerationConfig
    from training.generation import generate, load_causal_lm, prompt_text

    model, tokenizer = load_causal_lm("gemma-3-270m", models_dir)
    config = GenerationConfig(model="gemma-3-270m", samples_per_prompt=2, max_new_tokens=new_tokens,
                              batch_size=batch, temperature=1.0, top_p=0.95)
    prompts = conversations[:batch]
    texts = [prompt_text(tokenizer, p) for p in prompts]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

    def product():
        began = time.perf_counter()
        samples = generate(model, tokenizer, prompts, config)
        return time.perf_counter() - began, sum(s.token_count for s in samples), samples

    def bare():
        torch.manual_seed(0)
        began = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**encoded, do_sample=True, temperature=1.0, top_p=0.95, max_new_tokens=new_tokens,
                                 num_return_sequences=2, pad_token_id=tokenizer.pad_token_id,
                                 stop_strings=list(transcript.STOP_STRINGS), tokenizer=tokenizer)
        new = out[:, encoded["input_ids"].shape[1] :]
        return time.perf_counter() - began, int((new != tokenizer.pad_token_id).sum())

    # transformers prepares the stop strings against the whole 262k-token vocabulary once per process
    # (several seconds, then cached): a warm-up call keeps that out of both timings
    generate(model, tokenizer, prompts[:1], GenerationConfig(model="gemma-3-270m", max_new_tokens=2))
    # product, bare, bare, product: a load that drifts during the measurement weighs on both alike
    p1, b1, b2, p2 = product(), bare(), bare(), product()
    samples = p2[2]
    product_s, product_tokens = p1[0] + p2[0], p1[1] + p2[1]
    bare_s, bare_tokens = b1[0] + b2[0], b1[1] + b2[1]
    product_rate, bare_rate = product_tokens / product_s, bare_tokens / bare_s
    print(f"generation: product {product_rate:.1f} tokens/s ({product_tokens} in {product_s:.1f} s), bare "
          f"model.generate {bare_rate:.1f} tokens/s ({bare_tokens} in {bare_s:.1f} s); ratio "
          f"{product_rate / bare_rate:.2f} (load average {os.getloadavg()[0]:.1f})", flush=True)
    left = sum("Human:" in s.text for s in samples)
    print(f"generation: {left} of {len(samples)} product samples contain 'Human:'", flush=True)


class _StepClock:
    """Times between logged optimizer steps: a TrainerCallback for the bare trainer (``on_log``), a reporter
    (:class:`training.progress.NullReporter`'s protocol, ``metric``) for ours."""

    def __init__(self) -> None:
        from training.progress import NullReporter

        self.times: list[float] = []
        self._reporter = NullReporter()

    def __getattr__(self, name):
        if name.startswith("on_"):  # TrainerCallback events other than on_log
            return lambda *a, **k: None
        return getattr(self._reporter, name)  # the rest of the reporter protocol

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.times.append(time.perf_counter())

    def metric(self, step, values):
        self.times.append(time.perf_counter())

    def step_s(self) -> float:
        return self.times[1] - self.times[0] if len(self.times) > 1 else float("nan")


def compare_rloo(models_dir: Path, conversations: list, work: Path) -> None:
    """One RLOO step of the product against a bare TRL RLOOTrainer with the preset's settings."""
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    from runs.presets import PRESETS
    from training import transcript
    from training.checkpoints import trainer_kwargs
    from training.config import PolicyConfig
    from training.generation import prompt_text
    from training.modeling import resolve
    from training.policy import train_policy

    path = resolve("gemma-3-270m", models_dir)
    policy = PolicyConfig(**{**PRESETS["gemma-cpu"].config["policy"], "checkpoint_every": 1000})

    def reward(prompts=None, completions=None, **kwargs):
        return [float(len(transcript.trim(c).split())) for c in completions]  # cheap and the same for both

    prompts = conversations[: policy.batch_size * 2]
    clock = _StepClock()
    train_policy(policy, path, work / "product", prompts=prompts, reward_fn=reward, reporter=clock, max_steps=2)
    product = clock.step_s()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    bare_clock = _StepClock()
    args = RLOOConfig(
        **trainer_kwargs(work / "bare", seed=policy.seed, learning_rate=policy.learning_rate,
                         batch_size=policy.batch_size, max_steps=2),
        beta=policy.beta, num_generations=policy.num_generations, max_completion_length=policy.max_new_tokens,
        temperature=policy.temperature, remove_unused_columns=False, log_completions=False,
    )
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_log(self, *a, **k):
            bare_clock.on_log(*a, **k)

    trainer = RLOOTrainer(model=path, reward_funcs=reward, args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_dict({"prompt": [prompt_text(tokenizer, p) for p in prompts]}),
                          callbacks=[Clock()])
    trainer.train()
    bare = bare_clock.step_s()
    print(f"rloo step: product {product:.1f} s, bare TRL {bare:.1f} s; speed ratio {bare / product:.2f} "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200, help="HH-RLHF prompts imported (train + eval)")
    parser.add_argument("--eval-prompts", type=int, default=40, help="evaluation.max_prompts")
    parser.add_argument("--steps", type=int, default=60, help="policy.steps")
    parser.add_argument("--eval-ratio", type=float, default=0.2, help="share of the prompts held out")
    parser.add_argument("--no-compare", action="store_true", help="skip the side-by-side measurements")
    parser.add_argument("--compare-only", choices=("generation", "rloo", "both"), default=None,
                        help="only the side-by-side measurements (no loop)")
    parser.add_argument("--models-cache", default=str(REPO / "var" / "models"), help="where converted models live")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="more config overrides")
    parser.add_argument("--stages", default="", help="comma-separated stages (default: the preset's); e.g. "
                        "policy,evaluate with --set policy.reward_source=judge (direct RLAIF)")
    parser.add_argument("--keep", action="store_true", help="keep the run's database and artifacts (the tuned policy)")
    args = parser.parse_args()
    if not HH.exists():
        sys.exit(f"{HH} is missing")

    tmp = Path(tempfile.mkdtemp(prefix="real-loop-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["STUDIO_DATA_DIR"] = str(tmp)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    cache = Path(args.models_cache) / "gguf"
    cache.mkdir(parents=True, exist_ok=True)
    (tmp / "models").mkdir(parents=True)
    os.symlink(cache, tmp / "models" / "gguf")  # convert once, across benchmark runs

    import django

    django.setup()
    import django_rq
    from django.conf import settings
    from django.core.management import call_command

    from constitutions.starter import STARTER_NAME
    from rlaif_site.queueing import queue_names
    from runs.models import Artifact, MetricPoint, Run
    from runs.starter import ensure_starter_data
    from training.modeling import resolve

    call_command("migrate", interactive=False, verbosity=0)
    ensure_starter_data()
    began = time.perf_counter()
    resolve("gemma-3-270m", settings.MODELS_DIR)
    print(f"gemma-3-270m ready in {time.perf_counter() - began:.1f} s (a first use converts the GGUF file)")
    call_command("import_prompts", str(HH), name="HH", layout="hh_rlhf", limit=args.prompts,
                 eval_ratio=args.eval_ratio, stdout=open(os.devnull, "w"))

    if not args.no_compare or args.compare_only:
        from runs.models import PromptSet

        conversations = [p.conversation for p in PromptSet.objects.get(name="HH").prompts.order_by("index")[:16]]
        if args.compare_only in (None, "generation", "both"):
            compare_generation(settings.MODELS_DIR, conversations)
        if args.compare_only in (None, "rloo", "both"):
            compare_rloo(settings.MODELS_DIR, conversations, tmp / "compare")
        if args.compare_only:
            shutil.rmtree(tmp, ignore_errors=True)
            return

    call_command(
        "launch_run", preset="gemma-cpu", name="real-loop", constitution=STARTER_NAME, prompt_set="HH",
        set=[f"evaluation.max_prompts={args.eval_prompts}", f"policy.steps={args.steps}", *args.set],
        **({"stages": args.stages} if args.stages else {}),
        stdout=open(os.devnull, "w"),
    )
    run = Run.objects.get(name="real-loop")
    began = time.perf_counter()
    django_rq.get_worker(*queue_names(), worker_class="rq.worker.SimpleWorker").work(burst=True)
    minutes = (time.perf_counter() - began) / 60
    run.refresh_from_db()
    for stage in run.ordered_stages():
        seconds = (stage.finished_at - stage.started_at).total_seconds() if stage.finished_at else float("nan")
        print(f"stage {stage.stage}: {stage.status} in {seconds:.0f} s {stage.error[:300]}".rstrip(), flush=True)
    metrics = dict(MetricPoint.objects.filter(run=run, stage="evaluate").values_list("name", "value"))
    policy_points = MetricPoint.objects.filter(run=run, stage="policy").order_by("step")
    kls = list(policy_points.filter(name="kl").values_list("value", flat=True))
    kl = kls[-1] if kls else float("nan")
    for name in ("reward", "judge_margin", "completions/mean_length"):  # judge_margin: direct RLAIF only
        values = list(policy_points.filter(name=name).values_list("value", flat=True))
        if values:
            k = max(1, len(values) // 5)
            print(f"policy: {name} first {k} steps {sum(values[:k]) / k:.3f}, last {k} "
                  f"{sum(values[-k:]) / k:.3f}; final kl {kl:.4f}")
    report = Artifact.objects.filter(run=run, kind="report", name="evaluation").first()
    if report:
        import json

        data = json.loads(Path(report.path).read_text())
        if "reward" in data:
            r = data["reward"]
            print(f"reward model score: reference {r['reference']['mean']:.3f}, tuned {r['tuned']['mean']:.3f} "
                  f"(paired difference {r['difference']['mean_diff']:.3f} "
                  f"[{r['difference']['low']:.3f},{r['difference']['high']:.3f}])")
        if "repetition" in data:
            r = data["repetition"]
            print(f"repetition (rep-{r['n']}, judge-free): reference {r['reference']:.3f}, tuned {r['tuned']:.3f}")
        for row in data["samples"][:3]:
            print(f"--- prompt: {row['prompt'][-300:]!r}\n    reference: {row['reference']!r}\n"
                  f"    tuned:     {row['tuned']!r}\n    judge: {row['verdict']}")
    from runs.audit.calibrated import evaluation_estimates

    estimates = evaluation_estimates(run)
    if estimates and estimates["length_controlled"].get("value") is not None:
        lc = estimates["length_controlled"]
        print(f"length-controlled win rate (Dubois et al. 2024): {lc['value']:.3f} [{lc['low']:.3f},{lc['high']:.3f}]")
    rate, low, high = (metrics.get(k, float("nan")) for k in ("win_rate", "win_rate_low", "win_rate_high"))
    print(f"eval comparisons {metrics.get('eval_comparisons', 0):.0f} (wins {metrics.get('wins', 0):.0f}, "
          f"losses {metrics.get('losses', 0):.0f}, ties {metrics.get('ties', 0):.0f})")
    print(f"win_rate={rate:.3f} ci=[{low:.3f},{high:.3f}] kl={kl:.4f} minutes={minutes:.1f}")
    if args.keep:
        print(f"kept {tmp} (database bench.sqlite3 and artifacts/)", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
