"""Artifact downloads and the sample table of a run's policy stage."""
from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from runs.artifact_files import ArtifactMissing, artifact_location, download_name, zip_chunks
from runs.models import Artifact, Run


@require_GET
def artifact_download(request, pk: int, artifact_id: int):
    """``GET /runs/<pk>/artifacts/<id>/download/``: the artifact's file, or its folder as a zip streamed while
    it is written (a model's weights are never held in memory). 404 when the files are gone or lie outside
    the artifacts folder."""
    artifact = get_object_or_404(Artifact.objects.select_related("run"), pk=artifact_id, run_id=pk)
    try:
        path = artifact_location(artifact)
    except ArtifactMissing as exc:
        raise Http404(str(exc)) from None
    if path.is_dir():
        response = StreamingHttpResponse(zip_chunks(path, path.name), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{download_name(artifact.run, artifact, True)}"'
        return response
    return FileResponse(path.open("rb"), as_attachment=True, filename=download_name(artifact.run, artifact, False))


#: At most this many steps side by side in the sample table (the first, the last and evenly spaced others).
SAMPLE_COLUMNS = 8


def policy_samples_path(run: Run):
    """The sample-table file of the run's policy stage (recorded artifact, else where the stage writes it)."""
    from training.callbacks import SAMPLES_FILE

    artifact = Artifact.objects.filter(run=run, kind=Artifact.Kind.REPORT, name="policy_samples").first()
    return Path(artifact.path) if artifact else run.artifacts_dir / "policy" / SAMPLES_FILE


def spread(items: list, n: int) -> list:
    """At most ``n`` of ``items``: the first, the last and evenly spaced ones between (all when fewer)."""
    if len(items) <= n:
        return items
    picks = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in picks]


@require_GET
def run_samples(request, pk: int):
    """The sample table: the policy's greedy responses to the same eval prompts at the start of training, at
    each checkpoint and at the end, side by side (``?all=1``: every sampled step, else at most
    :data:`SAMPLE_COLUMNS`)."""
    from training.callbacks import read_samples

    run = get_object_or_404(Run, pk=pk)
    records = read_samples(policy_samples_path(run))
    shown = records if request.GET.get("all") else spread(records, SAMPLE_COLUMNS)
    prompts = [s["prompt"] for s in shown[0]["samples"]] if shown else []
    rows = [
        {"prompt": prompt, "responses": [r["samples"][i]["response"] if i < len(r["samples"]) else "" for r in shown]}
        for i, prompt in enumerate(prompts)
    ]
    return render(request, "runs/run_samples.html", {
        "run": run, "steps": shown, "rows": rows, "hidden": len(records) - len(shown), "total": len(records),
    })
