"""Author-only constitution actions: create, edit (one form for the whole content), fork, archive and
restore a constitution, and restore an old version as the newest one.

Every save goes through ``ConstitutionVersion.objects.create_version``: an unchanged form creates nothing, and
an edit opened on a version that is no longer the latest is refused with a conflict (HTTP 409) that keeps
the author's text on the page and links the diff.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from constitutions.forms import ConstitutionForm, ExampleFormSet, ForkForm, PrincipleFormSet, VersionForm
from constitutions.lint import principle_lint
from constitutions.models import Constitution, ConstitutionVersion, VersionConflict
from constitutions.views.common import content_of, get_version
from rlaif_site.roles import AUTHORS, role_required
from training.judge_prompt import DEFAULT_TEMPLATE, OPTIONAL_PLACEHOLDERS, REQUIRED_PLACEHOLDERS


@dataclass
class Editor:
    """The four forms of the editor page, bound to a POST or filled from a version."""

    meta: ConstitutionForm
    content: VersionForm
    principles: PrincipleFormSet
    examples: ExampleFormSet

    @classmethod
    def build(cls, request, constitution: Constitution | None, version: ConstitutionVersion | None) -> Editor:
        if request.method == "POST":
            data = request.POST
            return cls(
                meta=ConstitutionForm(data, instance=constitution),
                content=VersionForm(data),
                principles=PrincipleFormSet(data, prefix="principles"),
                examples=ExampleFormSet(data, prefix="examples"),
            )
        content = content_of(version) if version else {"principles": [], "judge_template": DEFAULT_TEMPLATE,
                                                       "few_shot_examples": []}
        editor = cls(
            meta=ConstitutionForm(instance=constitution),
            content=VersionForm(initial={"judge_template": content["judge_template"],
                                         "allow_ties": content.get("allow_ties", False),
                                         "base_version": version.number if version else None}),
            principles=PrincipleFormSet(initial=content["principles"], prefix="principles"),
            examples=ExampleFormSet(initial=content["few_shot_examples"], prefix="examples"),
        )
        if not content["principles"]:
            editor.principles.extra = 1  # a blank principle to start from
        return editor

    def is_valid(self) -> bool:
        return all([self.meta.is_valid(), self.content.is_valid(), self.principles.is_valid(),
                    self.examples.is_valid()])

    def version_kwargs(self) -> dict:
        return {
            "principles": self.principles.principles(),
            "judge_template": self.content.cleaned_data["judge_template"],
            "few_shot_examples": self.examples.examples(),
            "note": self.content.cleaned_data["note"],
            "allow_ties": self.content.cleaned_data["allow_ties"],
        }


def _in_page_order(formset) -> list:
    """Forms sorted by their ORDER value, so a re-shown form (errors, conflict) keeps the author's order."""

    def key(indexed):
        index, form = indexed
        value = str(form["ORDER"].value() or "")
        return (int(value) if value.lstrip("-").isdigit() else float("inf"), index)

    return [form for _, form in sorted(enumerate(formset.forms), key=key)]


def _render_editor(request, editor: Editor, constitution=None, conflict=None, status=200):
    if constitution is not None and request.method == "POST":
        constitution.refresh_from_db()  # the bound ModelForm wrote the unsaved name onto the instance
    forms = _in_page_order(editor.principles)
    if constitution is not None and constitution.latest_version is not None:
        # Lint of the version being edited, beside each principle of the same name.
        version = constitution.latest_version
        found = principle_lint(version)
        by_name = {p.name: found.get(p.pk) for p in version.principles.all()}
        for form in forms:
            form.lint = by_name.get(form["name"].value())
    context = {
        "editor": editor, "constitution": constitution, "conflict": conflict,
        "principle_forms": forms,
        "base_number": editor.content["base_version"].value(),
        "required_placeholders": REQUIRED_PLACEHOLDERS, "optional_placeholders": OPTIONAL_PLACEHOLDERS,
    }
    return render(request, "constitutions/editor.html", context, status=status)


@role_required(AUTHORS)
def constitution_create(request):
    """A new constitution and its version 1, from one form."""
    editor = Editor.build(request, None, None)
    if request.method == "POST" and editor.is_valid():
        with transaction.atomic():
            constitution = editor.meta.save(commit=False)
            constitution.created_by = request.user
            constitution.save()
            kwargs = editor.version_kwargs()
            kwargs["note"] = kwargs["note"] or "First version"
            version, _ = ConstitutionVersion.objects.create_version(constitution, author=request.user, **kwargs)
        messages.success(request, f"Created {constitution.name} (version 1).")
        return redirect("constitutions:version", pk=constitution.pk, number=version.number)
    return _render_editor(request, editor)


@role_required(AUTHORS)
def constitution_edit(request, pk: int):
    """Edit name, description and content; saving changed content creates the next version.

    The hidden ``base_version`` is the version the form was opened on. When a newer version exists the save
    is refused (409) and the page offers to save on top of it (the ``rebase`` button carries its number).
    """
    constitution = get_object_or_404(Constitution, pk=pk)
    if constitution.archived:
        messages.error(request, f"{constitution.name} is archived; restore it before editing.")
        return redirect("constitutions:detail", pk=pk)
    editor = Editor.build(request, constitution, constitution.latest_version)
    conflict = None
    if request.method == "POST" and editor.is_valid():
        rebase = request.POST.get("rebase", "")
        base_number = int(rebase) if rebase.isdigit() else editor.content.cleaned_data["base_version"]
        base = constitution.versions.filter(number=base_number).first() if base_number else None
        try:
            with transaction.atomic():
                renamed = editor.meta.has_changed()
                if renamed:
                    editor.meta.save(commit=False)
                    constitution.save(update_fields=["name", "description"])
                version, created = ConstitutionVersion.objects.create_version(
                    constitution, author=request.user, base_version=base, check_conflict=True,
                    **editor.version_kwargs(),
                )
        except VersionConflict as exc:
            conflict = exc.latest
        else:
            if created:
                messages.success(request, f"Saved version {version.number}.")
            elif renamed:
                messages.success(request, "Saved the name and description; the content is unchanged, so no new "
                                          "version was created.")
            else:
                messages.info(request, f"Nothing changed; no new version was created (still version {version.number}).")
            return redirect("constitutions:version", pk=pk, number=version.number)
    return _render_editor(request, editor, constitution, conflict, status=409 if conflict else 200)


@role_required(AUTHORS)
def constitution_fork(request, pk: int):
    """Copy a version (``?version=N``, default the latest) into a new constitution, then open its editor."""
    constitution = get_object_or_404(Constitution, pk=pk)
    number = request.GET.get("version") or request.POST.get("version")
    source = (get_version(pk, int(number)) if number and str(number).isdigit() else constitution.latest_version)
    if source is None:
        messages.error(request, f"{constitution.name} has no version to fork.")
        return redirect("constitutions:detail", pk=pk)
    form = ForkForm(request.POST if request.method == "POST" else None,
                    initial={"name": f"{constitution.name} (fork)"})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            fork = Constitution.objects.create(name=form.cleaned_data["name"], description=constitution.description,
                                               created_by=request.user)
            ConstitutionVersion.objects.create_version(
                fork, author=request.user, note=f"Forked from {constitution.name} v{source.number}",
                **content_of(source),
            )
        messages.success(request, f"Forked {constitution.name} v{source.number} as {fork.name}.")
        return redirect("constitutions:edit", pk=fork.pk)
    return render(request, "constitutions/fork.html", {"constitution": constitution, "source": source, "form": form})


def _set_archived(request, pk: int, archived: bool):
    constitution = get_object_or_404(Constitution, pk=pk)
    constitution.archived = archived
    constitution.save(update_fields=["archived"])
    verb = "Archived" if archived else "Restored"
    messages.success(request, f"{verb} {constitution.name}.")
    return redirect("constitutions:list")


@require_POST
@role_required(AUTHORS)
def constitution_archive(request, pk: int):
    """Hide a constitution from the list and from new runs (its versions and runs stay)."""
    return _set_archived(request, pk, True)


@require_POST
@role_required(AUTHORS)
def constitution_unarchive(request, pk: int):
    """Bring an archived constitution back."""
    return _set_archived(request, pk, False)


@require_POST
@role_required(AUTHORS)
def version_restore(request, pk: int, number: int):
    """Save an old version's content as the newest version (nothing is created when it equals the latest)."""
    old = get_version(pk, number)
    version, created = ConstitutionVersion.objects.create_version(
        old.constitution, author=request.user, note=f"Restored from v{old.number}", **content_of(old)
    )
    if created:
        messages.success(request, f"Restored v{old.number} as version {version.number}.")
    else:
        messages.info(request, f"v{old.number} has the same content as the latest version; nothing to restore.")
    return redirect("constitutions:version", pk=pk, number=version.number)
