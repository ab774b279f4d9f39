"""Prompt sets: list, read, upload-and-import (operators) with the options and errors of
``manage.py import_prompts``, and the import's status."""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

import json
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils.text import get_valid_filename
from ninja import File, Form, Router, Schema, Status, UploadedFile
from ninja.pagination import PageNumberPagination, paginate

from rlaif_site.api.auth import require_role
from rlaif_site.api.errors import ApiError, ErrorOut
from rlaif_site.roles import OPERATORS
from runs.import_jobs import enqueue_import, import_progress, remove_stale_uploads, uploads_dir
from runs.importing import BadInput, ImportOptions, open_source, preview
from runs.models import PromptSet

router = Router()

#: Options that describe the mapping: guessed from the columns unless given (as the command does).
MAPPING_OPTIONS = ("layout", "prompt_column", "input_column", "messages_column", "chosen_column", "rejected_column",
                   "response_a_column", "response_b_column", "label_column", "dedupe", "vote_columns")


class PromptSetOut(Schema):
    id: int
    name: str
    description: str
    source: str
    status: str
    created_at: datetime
    prompts: int

    @staticmethod
    def resolve_prompts(ps) -> int:
        if isinstance(ps, dict):
            return ps["prompts"]
        return ps.n if hasattr(ps, "n") else ps.prompts.count()


class PromptSetDetail(PromptSetOut):
    import_report: dict[str, Any]


class ImportStatus(Schema):
    id: int
    status: str
    rows_read: int = 0
    prompts: int = 0
    expected: int | None = None
    fraction: float | None = None
    error: str = ""
    job_status: str | None = None


class ImportStarted(Schema):
    prompt_set: PromptSetOut
    options: dict[str, Any]
    status_url: str


def _out(ps: PromptSet, count: int | None = None) -> dict:
    return {"id": ps.pk, "name": ps.name, "description": ps.description, "source": ps.source, "status": ps.status,
            "created_at": ps.created_at, "prompts": ps.prompts.count() if count is None else count}


@router.get("/", response=list[PromptSetOut], summary="List prompt sets")
@paginate(PageNumberPagination, page_size=50)
def list_prompt_sets(request, status: str = ""):
    qs = PromptSet.objects.annotate(n=Count("prompts")).order_by("-created_at")
    if status:
        qs = qs.filter(status=status)
    return qs  # paginated in the database; ``n`` is the annotated prompt count


@router.get("/{int:prompt_set_id}", response=PromptSetDetail, summary="A prompt set with its import report")
def get_prompt_set(request, prompt_set_id: int):
    ps = get_object_or_404(PromptSet, pk=prompt_set_id)
    return {**_out(ps), "import_report": ps.import_report or {}}


@router.get("/{int:prompt_set_id}/import", response=ImportStatus, summary="Import progress")
def import_status(request, prompt_set_id: int):
    """Status (``importing``, ``ready``, ``failed``), rows read, prompts so far, fraction and error."""
    ps = get_object_or_404(PromptSet, pk=prompt_set_id)
    return {"id": ps.pk, **import_progress(ps)}


def _parse_options(text: str) -> dict:
    try:
        given = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "options is not valid JSON.", [{"path": "options", "message": str(exc)}]) from exc
    if not isinstance(given, dict):
        raise ApiError(400, "options must be a JSON object.", [{"path": "options", "message": "must be an object"}])
    return given


def _options_for(source, given: dict) -> ImportOptions:
    """The command's rule: the mapping is guessed from the columns, and any option given overrides the guess
    (a different layout drops the guessed columns)."""
    base = ImportOptions(dataset_split=given.get("dataset_split", ""), dataset_config=given.get("dataset_config", ""))
    guessed = preview(source, base).suggested
    mapping_given = {k: v for k, v in given.items() if k in MAPPING_OPTIONS}
    same_layout = "layout" not in mapping_given or mapping_given["layout"] == guessed.get("layout")
    mapping = {**guessed, **mapping_given} if same_layout else mapping_given
    rest = {k: v for k, v in given.items() if k not in MAPPING_OPTIONS}
    return ImportOptions.from_dict({**mapping, **rest}).validate()


@router.post("/", response={202: ImportStarted, 400: ErrorOut, 403: ErrorOut},
             summary="Upload a file (or name a hub dataset) and import it (operators)")
def import_prompt_set(
    request,
    name: Form[str],
    description: Form[str] = "",
    hub_id: Form[str] = "",
    options: Form[str] = "{}",
    file: File[UploadedFile] = None,
):
    """Multipart form: ``name``, ``file`` (JSONL, JSON, CSV, Parquet, a ``.zip`` of a save_to_disk folder) or
    ``hub_id``, and ``options``: a JSON object of :class:`runs.importing.ImportOptions` fields, the flags of
    ``manage.py import_prompts`` (e.g. ``{"layout": "hh_rlhf", "limit": 500, "skip_bad_rows": true}``).
    The mapping is guessed from the columns where not given. Bad input is a 400 naming the field or row; the
    import then runs as a background job: follow ``status_url``."""
    require_role(request, OPERATORS)
    name = name.strip()
    if not name:
        raise ApiError(400, "A name is required.", [{"path": "name", "message": "may not be empty"}])
    if PromptSet.objects.filter(name=name).exists():
        raise ApiError(400, "Name taken.", [{"path": "name", "message": f"a prompt set named {name!r} exists"}])
    if bool(file) == bool(hub_id.strip()):
        raise ApiError(400, "Give a file or a hub_id.",
                       [{"path": "file", "message": "give exactly one of file and hub_id"}])
    given = _parse_options(options)
    remove_stale_uploads()
    cleanup = ""
    if file:
        folder = uploads_dir() / secrets.token_urlsafe(12)
        folder.mkdir(parents=True, exist_ok=True)
        cleanup = str(folder)
        label = get_valid_filename(Path(file.name).name)
        location = folder / label
        with open(location, "wb") as out:
            for chunk in file.chunks():
                out.write(chunk)
        location, hub = str(location), False
    else:
        location = label = hub_id.strip()
        hub = True
    source = None
    try:
        try:
            source = open_source(location, name=label, hub=hub)
        except BadInput as exc:
            raise ApiError(400, str(exc), [{"path": "hub_id" if hub else "file", "message": exc.message}]) from exc
        try:
            import_options = _options_for(source, given)
        except BadInput as exc:
            # an option's name (or "columns") is an option error; a row or file problem names no option
            path = f"options.{exc.field}" if exc.field and exc.row is None and not exc.file else ""
            raise ApiError(400, str(exc), [{"path": path, "message": exc.message}]) from exc
    except ApiError:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise
    finally:
        if source is not None:
            source.close()
    with transaction.atomic():
        ps = PromptSet.objects.create(name=name, description=description, source=label[:500], created_by=request.user,
                                      status=PromptSet.Status.IMPORTING)
        enqueue_import(ps, location, import_options, name=label, hub=hub, cleanup=cleanup)
    return Status(202, {"prompt_set": _out(ps, 0), "options": import_options.to_dict(),
                        "status_url": f"/api/v1/prompt-sets/{ps.pk}/import"})
