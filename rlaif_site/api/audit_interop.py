"""Audit interop through the API (auditors, operators): the audit sample as a Label Studio project or
Argilla records (blind: no AI verdicts), and a Label Studio or Argilla export uploaded back as human labels
(:mod:`runs.audit.interop`)."""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

import json
from typing import Any, Literal

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Schema, UploadedFile

from rlaif_site.api.auth import require_role
from rlaif_site.api.errors import ApiError, ErrorOut
from rlaif_site.roles import AUDITORS, OPERATORS
from runs.audit.interop import AnnotationFileError, argilla_jsonl, import_annotations, label_studio_zip
from runs.models import Run
from runs.views.audit_interop import MAX_IMPORT_BYTES

router = Router()


class ImportReportOut(Schema):
    """What an import did (:class:`runs.audit.interop.ImportReport`)."""

    tool: str
    filename: str
    tasks: int
    matched: int
    created: int
    unchanged: int
    skipped: int
    conflicts: list[dict[str, Any]]
    unmatched: list[dict[str, Any]]
    annotators: dict[str, str]
    notes: list[str]
    gate_met: bool


def _run(request, run_id: int) -> Run:
    require_role(request, AUDITORS, OPERATORS)
    return get_object_or_404(Run, pk=run_id)


def _attachment(body, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@router.get("/{int:run_id}/audit/export/label-studio", response={200: None, 403: ErrorOut},
            summary="The audit sample as a Label Studio project (zip), without AI verdicts (auditors, operators)")
def export_label_studio(request, run_id: int):
    """A zip of ``tasks.json``, ``label_config.xml`` and ``README.md``."""
    run = _run(request, run_id)
    return _attachment(label_studio_zip(run), f"run-{run.pk}-audit-label-studio.zip", "application/zip")


@router.get("/{int:run_id}/audit/export/argilla", response={200: None, 403: ErrorOut},
            summary="The audit sample as Argilla 2.x records (JSONL), without AI verdicts (auditors, operators)")
def export_argilla(request, run_id: int):
    """One ``rg.Record.to_dict()`` per line."""
    run = _run(request, run_id)
    return _attachment(argilla_jsonl(run), f"run-{run.pk}-audit-argilla.jsonl", "application/x-ndjson; charset=utf-8")


@router.post("/{int:run_id}/audit/annotations", response={200: ImportReportOut, 400: ErrorOut, 403: ErrorOut},
             summary="Import a Label Studio or Argilla export as human labels (auditors, operators)")
def import_file(request, run_id: int, file: File[UploadedFile],
                tool: Form[Literal["auto", "label_studio", "argilla"]] = "auto",
                label_studio_users: File[UploadedFile] = None):
    """Multipart ``file`` (and ``tool``, default detected). All or nothing: a malformed file is a 400 naming
    the task and field, and nothing is written. Existing labels are never overwritten (``conflicts``).
    Optional ``label_studio_users``: Label Studio's ``GET /api/users`` answer (JSON), naming the annotators
    that its *Export → JSON* gives by bare user id; without it they stay external and ``notes`` says so."""
    run = _run(request, run_id)
    if file.size > MAX_IMPORT_BYTES or (label_studio_users and label_studio_users.size > MAX_IMPORT_BYTES):
        raise ApiError(400, f"The file is larger than {MAX_IMPORT_BYTES // 2**20} MB.")
    users = None
    if label_studio_users is not None:
        try:
            users = json.loads(label_studio_users.read())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            message = f"{label_studio_users.name}: not JSON ({exc})"
            raise ApiError(400, message, [{"path": "label_studio_users", "message": message}]) from exc
    try:
        report = import_annotations(run, file.name, file.read(), tool, label_studio_users=users)
    except AnnotationFileError as exc:
        raise ApiError(400, str(exc), [{"path": "file", "message": str(exc)}]) from exc
    except ValueError as exc:  # label_studio_users of the wrong shape
        raise ApiError(400, str(exc), [{"path": "label_studio_users", "message": str(exc)}]) from exc
    return report.as_dict()
