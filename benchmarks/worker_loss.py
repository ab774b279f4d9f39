"""Killing the worker in every stage: how long until the run page stops showing the dead stage as running,
and whether any row is lost or duplicated.

On PostgreSQL + Redis with real ``manage.py rqworker`` processes (forking RQ workers, as deployed): a
reference run of the offline demo goes through every stage untouched; then an identical run is launched
and, in each stage, the worker and its work-horse are killed with SIGKILL once the stage is under way (a
machine or container loss; ``--horse-only`` kills only the work-horse, as the out-of-memory killer does).
A new worker is started at once, as a supervisor would. The seconds until the run's progress JSON (what
the run page polls) no longer shows the killed attempt as running are measured; at the end the rows of
both runs are counted per table and kind (completions by source, comparisons by purpose, judgments by
purpose, metric points by stage, artifacts by kind): fewer rows than the reference are lost, more are
duplicated. Target per stage: detection ≤ 60 s, 0 lost, 0 duplicated.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlaif_worker_loss REDIS_URL=redis://127.0.0.1:6379/15 \\
        python benchmarks/worker_loss.py

The database is created and migrated if missing; **the Redis database is emptied** (use a spare one).
Artifacts and the demo models go to ``var/bench-worker-loss`` (``STUDIO_DATA_DIR`` overrides). Prints one
line per stage, then ``worst_detect_s=… lost=… duplicated=…``.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STAGES = ("generate", "label", "reward_model", "policy", "evaluate")
SETTINGS = [
    "generation.max_prompts=24", "generation.batch_size=4", "policy.steps=12", "policy.checkpoint_every=4",
    "evaluation.max_prompts=12",
]


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


def setup_django() -> None:
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


class Workers:
    """``manage.py rqworker default gpu`` processes, started and killed by pid."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - kept for the process
        proc = subprocess.Popen([sys.executable, "manage.py", "rqworker", "default", "gpu"], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, horse_only: bool) -> list[int]:
        """SIGKILL ``proc``'s work-horses (its children) and, unless ``horse_only``, ``proc`` itself."""
        import psutil

        victims = [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        if not horse_only:
            victims.append(proc.pid)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not horse_only:
            proc.wait(timeout=10)
        return victims

    def stop_all(self) -> None:
        import psutil

        for proc in self.procs:
            if proc.poll() is None:
                children = psutil.Process(proc.pid).children(recursive=True)
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                for child in children:
                    if child.is_running():
                        child.kill()


def launch(name: str) -> int:
    from django.core.management import call_command

    from constitutions.starter import STARTER_NAME
    from runs.models import Run
    from runs.starter import DEMO_SET_NAME

    args = ["--preset", "offline-demo", "--name", name, "--constitution", STARTER_NAME,
            "--prompt-set", DEMO_SET_NAME, "--stages", ",".join(STAGES)]
    for assignment in SETTINGS:
        args += ["--set", assignment]
    call_command("launch_run", *args, stdout=open(os.devnull, "w"))  # noqa: SIM115
    return Run.objects.filter(name=name).latest("created_at").pk


def wait_run(run_id: int, timeout_s: float) -> str:
    from runs.models import Run

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Run.objects.filter(pk=run_id).values_list("status", flat=True).get()
        if status in ("succeeded", "failed", "cancelled"):
            return status
        time.sleep(1)
    return "timed out"


def row_counts(run_id: int) -> Counter:
    from django.db.models import Count

    from runs.models import Artifact, Comparison, Completion, Judgment, MetricPoint

    counts: Counter = Counter()
    for row in Completion.objects.filter(run_id=run_id).values("source").annotate(n=Count("id")):
        counts[f"completions[{row['source']}]"] = row["n"]
    for row in Comparison.objects.filter(run_id=run_id).values("purpose").annotate(n=Count("id")):
        counts[f"comparisons[{row['purpose']}]"] = row["n"]
    for row in Judgment.objects.filter(comparison__run_id=run_id).values("comparison__purpose").annotate(n=Count("id")):
        counts[f"judgments[{row['comparison__purpose']}]"] = row["n"]
    for row in MetricPoint.objects.filter(run_id=run_id).values("stage").annotate(n=Count("id")):
        counts[f"metric_points[{row['stage']}]"] = row["n"]
    for row in Artifact.objects.filter(run_id=run_id).values("kind").annotate(n=Count("id")):
        counts[f"artifacts[{row['kind']}]"] = row["n"]
    return counts


def expected_counts(run_id: int, reference: Counter) -> Counter:
    """Rows the killed run should hold: the reference run's counts, except where they depend on sampled
    text (a pair of identical samples is not compared): there the run's own completions say how many
    comparisons, and so judgments, it should have."""
    from runs.models import Completion
    from training.pairing import degenerate_reason

    expected = Counter(reference)
    samples: dict[int, list[str]] = {}
    rows = Completion.objects.filter(run_id=run_id, source="policy").order_by("prompt_id", "sample_index")
    for prompt_id, text in rows.values_list("prompt_id", "text"):
        samples.setdefault(prompt_id, []).append(text)
    ref_pairs = reference["comparisons[train]"]
    # The preset pairs the first two samples of a prompt, unless they are identical or one is empty.
    pairs = sum(1 for texts in samples.values() if len(texts) > 1 and not degenerate_reason(texts[0], texts[1]))
    expected["comparisons[train]"] = pairs
    if ref_pairs:
        expected["judgments[train]"] = round(reference["judgments[train]"] * pairs / ref_pairs)
    return expected


def duplicate_keys(run_id: int) -> int:
    """Rows sharing a natural key (what a job that ran twice would leave without unique constraints)."""
    from django.db.models import Count

    from runs.models import Completion, Judgment, MetricPoint

    dups = 0
    for rows in (
        Completion.objects.filter(run_id=run_id).values("prompt_id", "source", "sample_index"),
        Judgment.objects.filter(comparison__run_id=run_id).values("comparison_id", "principle_id", "judge_id"),
        MetricPoint.objects.filter(run_id=run_id).values("stage", "name", "step"),
    ):
        dups += sum(row["n"] - 1 for row in rows.annotate(n=Count("id")).filter(n__gt=1))
    return dups


def stage_of(key: str) -> str:
    """Which stage writes the rows counted under ``key``."""
    if key.startswith("metric_points["):
        return key[len("metric_points["):-1]
    if "eval" in key:
        return "evaluate"
    if key.startswith(("completions", "comparisons")):
        return "generate"
    if key.startswith("judgments"):
        return "label"
    if key.startswith("artifacts["):
        kind = key[len("artifacts["):-1]
        return {"reward_model": "reward_model", "policy": "policy"}.get(kind, kind)
    return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--horse-only", action="store_true", help="Kill only the work-horse (an OOM kill).")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds a run may take (default 900).")
    args = parser.parse_args()
    url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print("Set DATABASE_URL (PostgreSQL) and REDIS_URL (a spare database: it is emptied).", file=sys.stderr)
        return 2
    data_dir = Path(os.environ.setdefault("STUDIO_DATA_DIR", str(ROOT / "var" / "bench-worker-loss")))
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_database(url)
    setup_django()

    from django.contrib.auth import get_user_model
    from django.test import Client

    from rlaif_site.queueing import get_queue
    from runs.models import StageRun
    from runs.starter import ensure_starter_data
    from training.demo_models import ensure_demo_models

    ensure_starter_data()
    ensure_demo_models(data_dir / "models")
    get_queue().connection.flushdb()
    client = Client()
    client.force_login(get_user_model().objects.filter(is_superuser=True).first())
    workers = Workers(data_dir)
    results = []
    try:
        worker = workers.start()
        stamp = time.strftime("%H%M%S")
        reference = launch(f"worker-loss reference {stamp}")
        t0 = time.monotonic()
        status = wait_run(reference, args.timeout)
        print(f"reference run #{reference}: {status} in {time.monotonic() - t0:.0f} s", flush=True)
        if status != "succeeded":
            return 1

        run_id = launch(f"worker-loss killed {stamp}")
        for stage in STAGES:
            seen_at = None
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:  # wait until the stage is under way
                row = StageRun.objects.get(run_id=run_id, stage=stage)
                if row.status == "running":
                    seen_at = seen_at or time.monotonic()
                    if row.progress_done > 0 or time.monotonic() - seen_at >= 2.0:
                        break
                elif row.status in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            if row.status != "running":
                results.append((stage, None, f"stage {row.status} before the kill"))
                print(f"{stage:<13} not killed: {row.status} before the kill", flush=True)
                continue
            attempt = row.attempt
            victims = workers.kill(worker, args.horse_only)
            killed_at = time.monotonic()
            if not args.horse_only:
                worker = workers.start()  # a supervisor restarts it
            detect_s = None
            while time.monotonic() - killed_at < 300:
                state = client.get(f"/runs/{run_id}/progress.json").json()
                entry = next(s for s in state["stages"] if s["stage"] == stage)
                if entry["status"] != "running" or entry["attempt"] > attempt:
                    detect_s = time.monotonic() - killed_at
                    break
                time.sleep(0.25)
            results.append((stage, detect_s, f"killed pids {victims} at progress {row.progress_done}"))
            shown = f"{detect_s:.1f}" if detect_s is not None else "never (300 s)"
            print(f"{stage:<13} killed at {row.progress_done} done (attempt {attempt}); page stopped showing it "
                  f"running after {shown} s", flush=True)
        status = wait_run(run_id, args.timeout)
        print(f"killed run #{run_id}: {status}", flush=True)
    finally:
        workers.stop_all()

    ref, got = row_counts(reference), row_counts(run_id)
    want = expected_counts(run_id, ref)
    lost_by_stage: Counter = Counter()
    dup_by_stage: Counter = Counter()
    same_key = duplicate_keys(run_id)
    for key in sorted(set(want) | set(got)):
        diff = got[key] - want[key]
        if diff < 0:
            lost_by_stage[stage_of(key)] += -diff
        elif diff > 0:
            dup_by_stage[stage_of(key)] += diff
    print(f"{'stage':<13} {'detect_s':>9} {'lost':>6} {'duplicated':>11}")
    for stage, detect_s, _note in results:
        shown = f"{detect_s:.1f}" if detect_s is not None else "-"
        print(f"{stage:<13} {shown:>9} {lost_by_stage[stage]:>6} {dup_by_stage[stage]:>11}")
    print("rows (reference / expected / killed run): "
          + ", ".join(f"{k} {ref[k]}/{want[k]}/{got[k]}" for k in sorted(set(ref) | set(got))))
    print(f"rows sharing a natural key in the killed run: {same_key}")
    detected = [d for _, d, _ in results if d is not None]
    never = any(d is None and "before the kill" not in note for _, d, note in results)
    worst = "inf" if never or not detected else f"{max(detected):.1f}"
    print(f"worst_detect_s={worst} lost={sum(lost_by_stage.values())} "
          f"duplicated={sum(dup_by_stage.values()) + same_key}")
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
