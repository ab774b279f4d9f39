"""Constitutions and their versions: list, read, create a version from the YAML/JSON schema of
:mod:`constitutions.io` (authors), diff two versions, export one as a file."""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

import difflib
from datetime import datetime
from typing import Any, Literal

from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from ninja import Query, Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate

from constitutions import io
from constitutions.diff import version_lines
from constitutions.models import Constitution, ConstitutionVersion
from rlaif_site.api.auth import require_role
from rlaif_site.api.errors import ApiError, ErrorOut, split_path
from rlaif_site.roles import AUTHORS

router = Router()


class VersionSummary(Schema):
    id: int
    number: int
    note: str
    content_hash: str
    author: str | None
    created_at: datetime


class ConstitutionOut(Schema):
    id: int
    name: str
    description: str
    archived: bool
    created_at: datetime
    latest_version: VersionSummary | None

    @staticmethod
    def resolve_latest_version(c) -> dict | None:
        if isinstance(c, dict):
            return c["latest_version"]
        versions = getattr(c, "newest_first", None)  # prefetched by the list
        return _summary(versions[0] if versions else None) if versions is not None else _summary(c.latest_version)


class ConstitutionDetail(ConstitutionOut):
    versions: list[VersionSummary]


class VersionOut(VersionSummary):
    constitution_id: int
    document: dict[str, Any]


class VersionCreated(VersionOut):
    created: bool


class DocumentIn(Schema):
    """A constitution file's text in the schema of :mod:`constitutions.io` (``name``, ``principles``, …)."""

    document: str
    format: Literal["yaml", "json"] | None = None
    note: str = ""
    name: str = ""


class DiffOut(Schema):
    constitution_id: int
    old: int
    new: int
    changed: bool
    diff: list[str]


def _summary(version: ConstitutionVersion | None) -> dict | None:
    if version is None:
        return None
    return {
        "id": version.pk, "number": version.number, "note": version.note, "content_hash": version.content_hash,
        "author": version.author.get_username() if version.author else None, "created_at": version.created_at,
    }


def _constitution(c: Constitution, detail: bool = False) -> dict:
    versions = list(c.versions.select_related("author").order_by("-number")) if detail else None
    latest = versions[0] if versions else (None if detail else c.latest_version)
    out = {"id": c.pk, "name": c.name, "description": c.description, "archived": c.archived,
           "created_at": c.created_at, "latest_version": _summary(latest)}
    if detail:
        out["versions"] = [_summary(v) for v in versions]
    return out


def _version(constitution_id: int, number: int) -> ConstitutionVersion:
    return get_object_or_404(
        ConstitutionVersion.objects.select_related("constitution", "author"),
        constitution_id=constitution_id, number=number,
    )


def _version_out(version: ConstitutionVersion) -> dict:
    return {**_summary(version), "constitution_id": version.constitution_id, "document": io.export_data(version)}


def _import(payload: DocumentIn, request, into: Constitution | None) -> tuple[ConstitutionVersion, bool]:
    try:
        parsed = io.loads(payload.document, payload.format)
        return io.import_file(parsed, author=request.user, into=into, name=payload.name, note=payload.note)
    except io.ConstitutionFileError as exc:
        raise ApiError(400, "The constitution document is invalid.", [split_path(e) for e in exc.errors]) from exc


class ListFilters(Schema):
    archived: bool | None = None
    q: str = ""


@router.get("/", response=list[ConstitutionOut], summary="List constitutions")
@paginate(PageNumberPagination, page_size=50)
def list_constitutions(request, filters: Query[ListFilters]):
    newest = ConstitutionVersion.objects.select_related("author").order_by("-number")
    qs = Constitution.objects.order_by("name").prefetch_related(
        Prefetch("versions", queryset=newest, to_attr="newest_first"))
    if filters.archived is not None:
        qs = qs.filter(archived=filters.archived)
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    return qs  # paginated in the database; each page's versions come in one prefetch query


@router.post("/", response={201: VersionCreated, 400: ErrorOut, 403: ErrorOut},
             summary="Create a constitution from a document (authors)")
def create_constitution(request, payload: DocumentIn):
    require_role(request, AUTHORS)
    version, created = _import(payload, request, None)
    return Status(201, {**_version_out(version), "created": created})


@router.get("/{int:constitution_id}", response=ConstitutionDetail, summary="A constitution and its versions")
def get_constitution(request, constitution_id: int):
    return _constitution(get_object_or_404(Constitution, pk=constitution_id), detail=True)


@router.post("/{int:constitution_id}/versions", response={201: VersionCreated, 200: VersionCreated,
                                                          400: ErrorOut, 403: ErrorOut},
             summary="Create the next version from a document (authors)")
def create_version(request, constitution_id: int, payload: DocumentIn):
    """201 with the new version; 200 with the latest version when the document equals it (nothing created)."""
    require_role(request, AUTHORS)
    constitution = get_object_or_404(Constitution, pk=constitution_id)
    version, created = _import(payload, request, constitution)
    return Status((201 if created else 200), {**_version_out(version), "created": created})


@router.get("/{int:constitution_id}/versions/{int:number}", response=VersionOut, summary="One version's content")
def get_version(request, constitution_id: int, number: int):
    return _version_out(_version(constitution_id, number))


@router.get("/{int:constitution_id}/versions/{int:number}/export", summary="Download a version as YAML or JSON",
            response={200: None})
def export_version(request, constitution_id: int, number: int, format: Literal["yaml", "json"] = "yaml"):
    version = _version(constitution_id, number)
    response = HttpResponse(io.dumps(version, format), content_type=io.CONTENT_TYPES[format])
    filename = f"{slugify(version.constitution.name) or 'constitution'}-v{version.number}.{format}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@router.get("/{int:constitution_id}/diff", response=DiffOut, summary="Unified diff of two versions")
def diff_versions(request, constitution_id: int, old: int, new: int):
    """The lines of :func:`constitutions.diff.version_lines` of ``old`` and ``new``, as a unified diff."""
    before, after = _version(constitution_id, old), _version(constitution_id, new)
    lines = list(difflib.unified_diff(version_lines(before), version_lines(after), f"v{old}", f"v{new}", lineterm=""))
    return {"constitution_id": constitution_id, "old": old, "new": new, "changed": bool(lines), "diff": lines}
