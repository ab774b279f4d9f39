"""Constitution files: export a version as YAML or JSON; import a file (authors) as a new constitution or as
the next version of one. The schema is documented in :mod:`constitutions.io`."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify

from constitutions import io
from constitutions.forms import ImportForm
from constitutions.views.common import get_version
from rlaif_site.roles import AUTHORS, role_required


def export_version(request, pk: int, number: int, fmt: str):
    """Download version ``number`` as ``.yaml`` or ``.json`` (``?inline=1`` shows it in the browser)."""
    if fmt not in io.FORMATS:
        raise Http404(f"Unknown format {fmt!r}.")
    version = get_version(pk, number)
    response = HttpResponse(io.dumps(version, fmt), content_type=io.CONTENT_TYPES[fmt])
    if not request.GET.get("inline"):
        filename = f"{slugify(version.constitution.name) or 'constitution'}-v{version.number}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    else:
        response["Content-Type"] = "text/plain; charset=utf-8"
    return response


@role_required(AUTHORS)
def import_constitution(request):
    """Upload or paste a file; every problem is listed by field path and line, and nothing is saved."""
    form = ImportForm(request.POST if request.method == "POST" else None, request.FILES or None,
                      initial={"into": request.GET.get("into")})
    file_errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        content, filename = form.source()
        try:
            parsed = io.loads(content, form.cleaned_data["format"] or None, filename)
            version, created = io.import_file(
                parsed, author=request.user, into=form.cleaned_data["into"], name=form.cleaned_data["name"],
                note=form.cleaned_data["note"] or (f"Imported from {filename}" if filename else ""),
            )
        except io.ConstitutionFileError as exc:
            file_errors = exc.errors
        else:
            if created:
                messages.success(request, f"Imported {version.constitution.name} as version {version.number}.")
            else:
                messages.info(request, f"The file equals {version.constitution.name} v{version.number}; "
                                       "no new version was created.")
            return redirect("constitutions:version", pk=version.constitution_id, number=version.number)
    status = 400 if request.method == "POST" else 200
    return render(request, "constitutions/import.html", {"form": form, "file_errors": file_errors}, status=status)
