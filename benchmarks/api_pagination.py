"""Server time of the API's paginated reads on a run with 100,000 judgments, in PostgreSQL.

Seeds (once; ``--reseed`` to redo) the same large run as ``benchmarks/run_pages.py`` (50,000 comparisons ×
2 principles = 100,000 judgments, 1,000 human labels, 20,000 metric points), then times token-authenticated
GETs through the Django test client (routing, middleware, token lookup, queries, pydantic serialisation):

* ``/api/v1/runs/<id>/judgments``: the first page (50), a filtered page, a deep page (``before`` = the middle
  judgment), and a 500-row page;
* ``/api/v1/runs/`` (the run list, page-number pagination) and ``/api/v1/runs/<id>/metrics?name=kl``.

Target: a judgments page under 200 ms. The last line holds the figures (median ms).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlaif_api_bench python benchmarks/api_pagination.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rlaif_api_bench"


def median_ms(client, url: str, headers: dict, repeat: int) -> tuple[float, float, int, int]:
    """(median ms, max ms, rows in the answer, queries) of ``repeat`` GETs after one warm-up."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    body = response.json()
    rows = len(body.get("items", body.get("series", [])))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        client.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        client.get(url, headers=headers)
    return statistics.median(times), max(times), rows, len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reseed", action="store_true", help="Seed a fresh benchmark run even if one exists.")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("This benchmark measures PostgreSQL: set DATABASE_URL=postgres://…")
    from benchmarks.run_pages import RUN_NAME, ensure_database, seed, setup_django

    ensure_database(url)
    setup_django(url)
    from django.test import Client

    from rlaif_site.models import ApiToken
    from runs.models import Judgment, Run

    run = None if args.reseed else Run.objects.filter(name=RUN_NAME).order_by("-pk").first()
    run = run or seed()
    _row, token = ApiToken.issue(run.owner, "benchmark")
    headers = {"Authorization": f"Bearer {token}"}
    n_judgments = Judgment.objects.filter(comparison__run=run).count()
    principle = run.constitution_version.principles.order_by("position").first()
    middle = Judgment.objects.filter(comparison__run=run).order_by("pk").values_list("pk", flat=True)[n_judgments // 2]
    base = f"/api/v1/runs/{run.pk}"
    calls = [
        ("judgments, first page (50)", f"{base}/judgments"),
        ("judgments, filtered", f"{base}/judgments?principle={principle.pk}&min_conf=0.6&consistent=yes"
                                "&audit=unlabelled"),
        ("judgments, deep page", f"{base}/judgments?before={middle}"),
        ("judgments, 500 rows", f"{base}/judgments?limit=500"),
        ("run list", "/api/v1/runs/"),
        ("metrics, one series", f"{base}/metrics?name=kl"),
    ]
    client = Client()
    print(f"run #{run.pk}: {n_judgments:,} judgments (PostgreSQL); load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'call':32} {'median ms':>10} {'max ms':>8} {'rows':>6} {'queries':>8}  target < 200 ms")
    figures = []
    for label, path in calls:
        med, worst, rows, queries = median_ms(client, path, headers, args.repeat)
        print(f"{label:32} {med:10.1f} {worst:8.1f} {rows:6d} {queries:8d}  {'ok' if med < 200 else 'SLOW'}")
        figures.append(f"{label} {med:.0f} ms")
    ApiToken.objects.filter(user=run.owner, name="benchmark").delete()
    print(f"api_pagination ({n_judgments:,} judgments, PostgreSQL, median of {args.repeat}): " + "; ".join(figures))


if __name__ == "__main__":
    main()
