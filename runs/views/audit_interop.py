"""Audit interop pages: the audit sample downloaded as a Label Studio project or Argilla records (blind: no
AI verdicts), and their completed annotations uploaded back as human labels, with the import's report."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from rlaif_site.roles import AUDITORS, OPERATORS, has_role
from runs.audit.forms import ImportAnnotationsForm
from runs.audit.interop import AnnotationFileError, argilla_jsonl, import_annotations, label_studio_zip
from runs.models import Run

#: Largest annotation file read (an export of thousands of pairs is a few MB).
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _audit_run(request, run_id: int) -> Run:
    """The run, for an auditor or an operator (the roles that draw samples); 403 for others."""
    if not (has_role(request.user, AUDITORS) or has_role(request.user, OPERATORS)):
        raise PermissionDenied("Exporting or importing audit annotations needs the 'auditors' or 'operators' role.")
    return get_object_or_404(Run, pk=run_id)


def _attachment(body: bytes | str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_label_studio(request, run_id: int):
    """The audit sample as a Label Studio project: a zip of ``tasks.json``, ``label_config.xml``, ``README.md``."""
    run = _audit_run(request, run_id)
    return _attachment(label_studio_zip(run), f"run-{run.pk}-audit-label-studio.zip", "application/zip")


def export_argilla(request, run_id: int):
    """The audit sample as Argilla 2.x records, one ``rg.Record.to_dict()`` per line."""
    run = _audit_run(request, run_id)
    return _attachment(argilla_jsonl(run), f"run-{run.pk}-audit-argilla.jsonl", "application/x-ndjson; charset=utf-8")


@require_POST
def import_view(request, run_id: int):
    """Upload a Label Studio or Argilla export: its answers become human labels (all or nothing) and the
    page shows what matched, what was created, what conflicted and what matched no pair."""
    run = _audit_run(request, run_id)
    form = ImportAnnotationsForm(request.POST, request.FILES)
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"Annotations not imported: {errors}")
        return redirect("runs:audit_dashboard", run_id=run.pk)
    upload = form.cleaned_data["file"]
    if upload.size > MAX_IMPORT_BYTES:
        messages.error(request, f"{upload.name}: larger than {MAX_IMPORT_BYTES // 2**20} MB; nothing was imported.")
        return redirect("runs:audit_dashboard", run_id=run.pk)
    try:
        report = import_annotations(run, upload.name, upload.read(), form.cleaned_data["tool"])
    except AnnotationFileError as exc:
        messages.error(request, f"Nothing was imported. {exc}")
        return redirect("runs:audit_dashboard", run_id=run.pk)
    if report.gate_met:
        messages.success(request, "The audit now meets the run's gate: reward-model training is queued.")
    return render(request, "runs/audit_import_report.html", {"run": run, "report": report})
