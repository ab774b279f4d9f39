"""Read-only constitution pages (every logged-in user): list, a version with its principles, history, diff."""
from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Max
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe

from constitutions.diff import version_diff
from constitutions.io import FORMATS
from constitutions.lint import principle_lint
from constitutions.models import Constitution, ConstitutionVersion
from constitutions.pins import latest_pins, pin_counts
from constitutions.views.common import get_version


def constitution_list(request):
    """Constitutions with their latest version number; archived ones only when asked (``?archived=1``)."""
    constitutions = Constitution.objects.annotate(n_versions=Count("versions"), latest=Max("versions__number"))
    show_archived = bool(request.GET.get("archived"))
    if not show_archived:
        constitutions = constitutions.filter(archived=False)
    return render(
        request, "constitutions/constitution_list.html",
        {"constitutions": constitutions, "show_archived": show_archived},
    )


def _version_page(request, version: ConstitutionVersion | None, constitution: Constitution):
    context = {"constitution": constitution, "version": version, "formats": FORMATS}
    if version is not None:
        latest_number = constitution.versions.aggregate(n=Max("number"))["n"]
        principles = list(version.principles.order_by("position"))
        found = principle_lint(version)
        for principle in principles:
            principle.lint = found.get(principle.pk)
        context.update(
            principles=principles,
            linted=bool(found),
            is_latest=version.number == latest_number,
            latest_number=latest_number,
            previous=constitution.versions.filter(number__lt=version.number).order_by("-number").first(),
            pins=latest_pins(version, limit=50),
            n_pins=pin_counts([version.pk])[version.pk],
        )
    return render(request, "constitutions/version_detail.html", context)


def constitution_detail(request, pk: int):
    """The constitution's latest version with its principles."""
    constitution = get_object_or_404(Constitution, pk=pk)
    return _version_page(request, constitution.latest_version, constitution)


def version_detail(request, pk: int, number: int):
    """One version: its principles, judge template, few-shot examples, and what pins it (runs)."""
    version = get_version(pk, number)
    return _version_page(request, version, version.constitution)


def version_by_id(request, version_id: int):
    """Redirect from a version's primary key (what a run stores) to its page."""
    version = get_object_or_404(ConstitutionVersion, pk=version_id)
    return redirect("constitutions:version", pk=version.constitution_id, number=version.number)


def history(request, pk: int):
    """Every version, newest first, with author, note, hash and how many runs pin it; pick two to compare."""
    constitution = get_object_or_404(Constitution, pk=pk)
    versions = list(
        constitution.versions.select_related("author", "parent")
        .annotate(n_principles=Count("principles", distinct=True))
        .order_by("-number")
    )
    counts = pin_counts(v.pk for v in versions)
    for v in versions:
        v.n_pins = counts[v.pk]
    return render(request, "constitutions/history.html", {"constitution": constitution, "versions": versions})


def _number(value) -> int | None:
    return int(value) if value is not None and str(value).isdigit() else None


def diff(request, pk: int):
    """Side by side diff of versions ``?a=`` (old) and ``?b=`` (new); defaults: the latest and the one before.
    ``?context=1`` shows only the changed lines with some context."""
    constitution = get_object_or_404(Constitution, pk=pk)
    numbers = list(constitution.versions.order_by("-number").values_list("number", flat=True))
    if not numbers:
        messages.info(request, "This constitution has no versions yet.")
        return redirect("constitutions:detail", pk=pk)
    b = _number(request.GET.get("b")) or numbers[0]
    a = _number(request.GET.get("a"))
    if a is None:
        a = next((n for n in numbers if n < b), b)
    old, new = get_version(pk, a), get_version(pk, b)
    only_changes = bool(request.GET.get("context"))
    context = {
        "constitution": constitution, "old": old, "new": new, "numbers": numbers, "only_changes": only_changes,
        # Trusted: difflib.HtmlDiff escapes &, < and > in every line of the versions' text before adding its
        # own table markup, and the only other text it inserts is "v<number>" (see constitutions.diff).
        "table": mark_safe(version_diff(old, new, context=only_changes)),  # noqa: S308
        "same": old.content_hash == new.content_hash,
    }
    return render(request, "constitutions/diff.html", context)
