"""Single-GPU smoke test: the **Single GPU** preset at reduced size on a tiny model, with and without LoRA.

For the day a CUDA machine is at hand (with ``requirements.txt`` installed): builds a GPT-2 shaped model on the
spot (:func:`training.tiny_models.build_causal_lm`, a tokenizer trained on the demo data, no download), then
launches the ``single-gpu`` preset twice with ``manage.py launch_run`` (pre-flight included) on the starter
constitution and demo prompts: once with ``policy.lora_rank`` 0 (every weight trains) and once with LoRA
(``--lora-rank``, default 8). The tiny model stands in for every model the preset names: the policy, the reward
model's base, and a local likelihood judge in place of the preset's judge endpoint, so nothing needs the network.
The stages are the real ones (generate → label → reward model → policy → evaluate), run by an RQ burst worker on
the ``default`` and ``gpu`` queues as ``rqworker default gpu`` would, on a temporary SQLite database and data
folder.

For each variant it prints, per stage: the status, seconds, the peak GPU memory allocated by torch during the
stage (``torch.cuda.max_memory_allocated``, reset before each job) and samples per second (generate: policy
completions; label: judgments; reward model: training pairs × epochs; policy: rollouts = steps × batch size;
evaluate: tuned and reference answers). The LoRA run generates the same samples as the first one, so its label
stage answers from the request cache: compare the policy lines. The last line reads
``full_s=… lora_s=… policy_peak_mb_full=… policy_peak_mb_lora=… policy_rollouts_per_s_full=… …_lora=…``.

Without a CUDA device it prints why it skipped and exits 0 (it is not part of CI). ``--cpu`` runs the same on
the CPU anyway (``STUDIO_ALLOW_CPU_ON_GPU_QUEUE=true``, no GPU figures), to check the wiring on a machine without
a GPU. It exits 1 when a stage fails. A few minutes on a GPU; the model size is chosen to keep it well under 5.

Usage::

    python benchmarks/gpu_smoke.py [--prompts 32] [--steps 10] [--lora-rank 8] [--keep] [--cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = ("generate", "label", "reward_model", "policy", "evaluate")


def reduced_config(model: Path, *, prompts: int, steps: int, lora_rank: int) -> dict:
    """The single-GPU preset's overrides: the tiny model everywhere, a local judge, reduced sizes."""
    return {
        "generation": {"model": str(model), "max_new_tokens": 32, "batch_size": 16, "max_prompts": prompts,
                       "samples_per_prompt": 4},
        "judge": {"backend": "likelihood", "model": str(model), "base_url": "", "api_key_env": "",
                  "concurrency": 1},
        "reward_model": {"base_model": str(model), "epochs": 1.0, "batch_size": 16, "max_length": 256,
                         "learning_rate": 1e-4},
        "policy": {"steps": steps, "batch_size": 16, "num_generations": 4, "max_new_tokens": 32,
                   "learning_rate": 1e-5, "checkpoint_every": max(steps, 1), "lora_rank": lora_rank},
        "evaluation": {"max_prompts": 8, "max_new_tokens": 32},
    }


def build_model(out: Path) -> Path:
    """A 4-layer, 256-wide GPT-2 (about 4M parameters) with a BPE tokenizer trained on the demo data."""
    from training import transcript
    from training.demo_models import demo_examples
    from training.tiny_models import build_causal_lm

    corpus = [f"{transcript.render(e.prompt)} {e.response}" for e in demo_examples()]
    prompts = (REPO / "runs" / "starter_data" / "demo_prompts.jsonl").read_text().splitlines()
    corpus += [json.loads(line)["prompt"] for line in prompts if line.strip()]
    return build_causal_lm(out, corpus, n_layer=4, n_embd=256, n_head=4, n_positions=512,
                           vocab_size=2048)


def measuring_worker(cuda: bool, records: dict):
    """An RQ ``SimpleWorker`` on both queues that times each job and reads torch's peak GPU memory for it."""
    import django_rq
    import torch
    from rq import SimpleWorker

    from rlaif_site.queueing import queue_names

    class MeasuringWorker(SimpleWorker):
        def perform_job(self, job, *args, **kwargs):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            began = time.perf_counter()
            try:
                return super().perform_job(job, *args, **kwargs)
            finally:
                if cuda:
                    torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
                records[job.id] = (time.perf_counter() - began, peak)

    return django_rq.get_worker(*queue_names(), worker_class=MeasuringWorker)


def samples(run, stage: str) -> tuple[int, str]:
    """How many samples ``stage`` of ``run`` processed, and what they are."""
    from runs.models import Comparison, Completion, CompletionSource, Judgment

    config = run.run_config
    if stage == "generate":
        return Completion.objects.filter(run=run, source=CompletionSource.POLICY).count(), "completions"
    if stage == "label":
        return Judgment.objects.filter(comparison__run=run).count(), "judgments"
    if stage == "reward_model":
        pairs = Comparison.objects.filter(run=run, purpose="train").count()
        return round(pairs * config.reward_model.epochs), "pairs"
    if stage == "policy":
        return config.policy.steps * config.policy.batch_size, "rollouts"
    sources = (CompletionSource.EVAL_REFERENCE, CompletionSource.EVAL_TUNED)
    return Completion.objects.filter(run=run, source__in=sources).count(), "answers"


def run_variant(label: str, model: Path, tmp: Path, args, cuda: bool) -> dict:
    """Launch and work one run; print its stages. Returns ``{seconds, ok, policy_peak_mb, policy_rate}``."""
    from django.core.management import call_command

    from constitutions.starter import STARTER_NAME
    from runs.models import Run
    from runs.starter import DEMO_SET_NAME

    rank = 0 if label == "full" else args.lora_rank
    import yaml

    config_file = tmp / f"{label}.yaml"  # YAML as yaml writes it: 1e-05 in JSON would read back as text
    config_file.write_text(yaml.safe_dump(reduced_config(model, prompts=args.prompts, steps=args.steps,
                                                         lora_rank=rank)))
    name = f"gpu-smoke-{label}"
    with open(os.devnull, "w") as quiet:
        call_command("launch_run", preset="single-gpu", name=name, constitution=STARTER_NAME,
                     prompt_set=DEMO_SET_NAME, config=str(config_file), stages=",".join(STAGES), stdout=quiet)
    run = Run.objects.get(name=name)
    records: dict = {}
    began = time.perf_counter()
    measuring_worker(cuda, records).work(burst=True, logging_level="WARNING")
    seconds = time.perf_counter() - began
    run.refresh_from_db()
    print(f"{label} (policy.lora_rank={rank}): run #{run.pk} {run.status} in {seconds:.1f} s", flush=True)
    result = {"seconds": seconds, "ok": run.status == "succeeded", "policy_peak_mb": float("nan"),
              "policy_rate": float("nan")}
    for stage in run.ordered_stages():
        stage_s, peak = records.get(stage.job_id, (float("nan"), float("nan")))
        count, unit = samples(run, stage.stage)
        rate = count / stage_s if stage_s > 0 else float("nan")
        print(f"  {stage.stage:<13}{stage.status:<10}{stage_s:7.1f} s  peak {peak:8.1f} MB  "
              f"{count:5d} {unit:<11}{rate:8.1f}/s", flush=True)
        if stage.error:
            print("    " + stage.error[:600].replace("\n", "\n    "), flush=True)
        if stage.stage == "policy":
            result.update(policy_peak_mb=peak, policy_rate=rate)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32, help="generation.max_prompts (default 32)")
    parser.add_argument("--steps", type=int, default=10, help="policy.steps (default 10)")
    parser.add_argument("--lora-rank", type=int, default=8, help="policy.lora_rank of the LoRA variant (default 8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, artifacts)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU where there is no CUDA device")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu:
        print("skipped: no CUDA device (torch.cuda.is_available() is False); run this on a machine with an "
              "NVIDIA GPU and the project's requirements installed, or pass --cpu to check the wiring")
        return
    if cuda:
        print(f"device: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})",
              flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "STUDIO_DATA_DIR": str(tmp),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    })
    if not cuda:
        os.environ["STUDIO_ALLOW_CPU_ON_GPU_QUEUE"] = "true"
    os.environ.pop("REDIS_URL", None)  # the embedded queue: the worker runs in this process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")

    import django

    django.setup()
    from django.core.management import call_command

    from runs.starter import ensure_starter_data

    call_command("migrate", interactive=False, verbosity=0)
    ensure_starter_data()
    began = time.perf_counter()
    model = build_model(tmp / "tiny-lm")
    print(f"tiny model built in {time.perf_counter() - began:.1f} s: {model}", flush=True)

    results = {label: run_variant(label, model, tmp, args, cuda) for label in ("full", "lora")}
    full, lora = results["full"], results["lora"]
    print(f"full_s={full['seconds']:.1f} lora_s={lora['seconds']:.1f} "
          f"policy_peak_mb_full={full['policy_peak_mb']:.1f} policy_peak_mb_lora={lora['policy_peak_mb']:.1f} "
          f"policy_rollouts_per_s_full={full['policy_rate']:.1f} policy_rollouts_per_s_lora={lora['policy_rate']:.1f}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if not all(r["ok"] for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
