"""Import 100,000 prompts from a JSONL file: rows/s and peak memory.

Writes a JSONL file of N distinct prompts (plain text, with a few percent exact/near duplicates and a
metadata column), then imports it with :func:`runs.importing.import_prompt_set` (the code path of the
browser job and ``manage.py import_prompts``): line-by-line JSON reader, validation, content-hash
de-duplication, split assignment and batched bulk inserts in one transaction. Prints rows/s, the Python
heap peak during the import (tracemalloc, measured in a separate pass because tracing slows it) and the
process's peak RSS.

Usage::

    python benchmarks/import_prompts.py [--n 100000] [--batch-size 1000] [--no-tracemalloc]

Uses a fresh SQLite database in a temporary folder unless ``--use-configured-db`` (then ``DATABASE_URL``
decides; the benchmark's prompt sets are deleted afterwards).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = ("how can i write a poem about the sea cats dogs tax return python code recipe bake bread explain why "
         "is the sky blue history of rome should tell me joke translate into french summarise article").split()


def _setup_django(use_configured_db: bool) -> None:
    if not use_configured_db:
        os.environ.pop("DATABASE_URL", None)
        os.environ["STUDIO_DATA_DIR"] = tempfile.mkdtemp(prefix="import-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def write_prompts(path: Path, n: int, seed: int = 0) -> int:
    """N rows of JSONL; about 2% repeat an earlier prompt with other case/spacing (de-duplicated on import)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            if i > 10 and rng.random() < 0.02:
                j = rng.randrange(i)
                text = f"  PROMPT {j}:  " + " ".join(random.Random(j).choices(WORDS, k=24)).upper()
            else:
                text = f"Prompt {i}: " + " ".join(random.Random(i).choices(WORDS, k=24))
            handle.write(json.dumps({"prompt": text, "source": "bench", "id": i}) + "\n")
    return path.stat().st_size


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_import(path: Path, name: str, batch_size: int, trace: bool):
    from runs.importing import ImportOptions, import_prompt_set, open_source

    options = ImportOptions(batch_size=batch_size, metadata_columns=["source"])
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    prompt_set = import_prompt_set(name, open_source(path), options)
    seconds = time.perf_counter() - started
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return prompt_set, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--no-tracemalloc", action="store_true", help="Skip the traced pass (heap peak).")
    parser.add_argument("--use-configured-db", action="store_true")
    args = parser.parse_args()
    _setup_django(args.use_configured_db)
    from django.db import connection

    from runs.models import PromptSet

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prompts.jsonl"
        size = write_prompts(path, args.n)
        # Warm up: load datasets/pyarrow (and the torch they pull in) so the figures are the import's own.
        write_prompts(Path(tmp) / "warm.jsonl", 10)
        warm, _, _ = run_import(Path(tmp) / "warm.jsonl", f"warm-{time.time_ns()}", args.batch_size, trace=False)
        PromptSet.objects.filter(pk=warm.pk).delete()
        rss_before = _rss_mib()
        prompt_set, seconds, _ = run_import(path, f"bench-{time.time_ns()}", args.batch_size, trace=False)
        rss_after = _rss_mib()
        report = prompt_set.import_report
        print(f"database: {connection.vendor}; file: {args.n:,} rows, {size / 2**20:.1f} MiB JSONL; "
              f"batch size {args.batch_size}")
        print(f"imported {report['prompts']:,} prompts ({report['duplicates']:,} duplicates dropped) "
              f"in {seconds:.1f} s: {args.n / seconds:,.0f} rows/s")
        print(f"peak RSS of the process: {rss_after:,.0f} MiB (after imports and a warm-up, before the import: "
              f"{rss_before:,.0f} MiB)")
        PromptSet.objects.filter(pk=prompt_set.pk).delete()
        if not args.no_tracemalloc:
            prompt_set, traced_seconds, peak = run_import(path, f"bench-{time.time_ns()}", args.batch_size, trace=True)
            print(f"peak Python heap during the import (tracemalloc pass, {traced_seconds:.1f} s): "
                  f"{peak / 2**20:,.1f} MiB")
            PromptSet.objects.filter(pk=prompt_set.pk).delete()


if __name__ == "__main__":
    main()
