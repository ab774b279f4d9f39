"""Prompt set pages: list, import (upload → column mapping with preview → background job with a progress
bar), detail with the import report, delete; and the download of a run's preferences for TRL."""
from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_POST

from rlaif_site.roles import OPERATORS, has_role, role_required
from runs.audit.blind import blinded_comparison_ids
from runs.exporting import PreferenceFilters, export_dataset, export_stem, save_preferences, zip_folder
from runs.import_jobs import enqueue_import, import_job_lost, import_progress, remove_stale_uploads, uploads_dir
from runs.importing import BadInput, ImportOptions, open_source, preview
from runs.models import PromptSet, ReferencePair, Run
from runs.prompt_forms import ExportForm, ImportOptionsForm, UploadForm

SESSION_PREFIX = "prompt-import:"
PREVIEW_ROWS = 5


def promptset_list(request):
    """Prompt sets with their size."""
    sets = PromptSet.objects.annotate(n_prompts=Count("prompts")).select_related("created_by")
    return render(
        request, "runs/promptset_list.html", {"prompt_sets": sets, "can_import": has_role(request.user, OPERATORS)}
    )


@role_required(OPERATORS)
def promptset_import(request):
    """Step 1: upload a file (or a folder's files) or name a hub dataset."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        remove_stale_uploads()
        token = secrets.token_urlsafe(12)
        entry = {"set_name": form.cleaned_data["name"], "description": form.cleaned_data["description"]}
        if form.cleaned_data["hub_id"]:
            entry.update(location=form.cleaned_data["hub_id"], name=form.cleaned_data["hub_id"], hub=True, cleanup="")
        else:
            folder = uploads_dir() / token
            folder.mkdir(parents=True, exist_ok=True)
            files = form.cleaned_data["files"]
            for upload in files:
                with open(folder / get_valid_filename(Path(upload.name).name), "wb") as out:
                    for chunk in upload.chunks():
                        out.write(chunk)
            single = len(files) == 1
            name = get_valid_filename(Path(files[0].name).name) if single else "uploaded folder"
            entry.update(location=str(folder / name if single else folder), name=name, hub=False, cleanup=str(folder))
        request.session[SESSION_PREFIX + token] = entry
        return redirect("runs:promptset_import_configure", token=token)
    return render(request, "runs/promptset_import.html", {"form": form})


@role_required(OPERATORS)
def promptset_import_configure(request, token: str):
    """Step 2: map columns, see the first rows as they will be imported, then start the import job."""
    entry = request.session.get(SESSION_PREFIX + token)
    if not entry:
        raise Http404("This import was started in another session or has already run.")
    context = {"entry": entry, "token": token, "result": None, "error": ""}
    try:
        source = open_source(entry["location"], name=entry["name"], hub=entry["hub"])
    except BadInput as exc:
        context["error"] = str(exc)
        return render(request, "runs/promptset_import_configure.html", context)
    action = request.POST.get("action", "preview")
    form = ImportOptionsForm(request.POST) if request.method == "POST" else None
    context["unit"] = source.unit
    suggested = {}  # what the first rows suggest for the mapping (a first visit)
    try:
        if form is None:
            context["result"] = guessed = preview(source, None, n=PREVIEW_ROWS)
            suggested = guessed.suggested
        elif form.is_valid():
            options = form.to_options().validate()
            if action == "import":
                checked = preview(source, options, n=PREVIEW_ROWS)
                if not _refuse_known_problems(form, checked, options, source.unit):
                    return _start_import(request, token, entry, options)
                context["result"] = checked
            else:
                context["result"] = preview(source, options, n=PREVIEW_ROWS)
    except BadInput as exc:
        context["error"] = str(exc)
    # a first visit gets the defaults, with what the first rows suggest; a hub dataset that could not be read
    # has nothing to map
    if form is None and not (context["error"] and entry["hub"]):
        form = ImportOptionsForm(initial=ImportOptionsForm.initial_from({**ImportOptions().to_dict(), **suggested}))
    context["form"] = form
    return render(request, "runs/promptset_import_configure.html", context)


def _refuse_known_problems(form, checked, options: ImportOptions, unit: str) -> bool:
    """Put on the form what the preview already shows would stop the import (label values without a mapping,
    a bad row among the first), so the user fixes it now instead of after the job waited in the queue.
    Returns whether anything was found. With *Skip bad rows* bad rows are the import's to list."""
    unmapped = [str(v["value"]) for v in checked.label_values if not v["maps_to"]]
    if unmapped:
        form.add_error("label_map", f"the label values {', '.join(unmapped)} are not A/B/tie: map each of them "
                                    "(e.g. 1=A, 2=B, 0=tie)")
    if not options.skip_bad_rows:
        errors = [item for item in checked.parsed if item["error"]]
        if unmapped:  # the label errors are already said once, on the label map
            errors = [item for item in errors if "self-describing" not in item["error"]]
        if errors:
            form.add_error(None, f"{unit} {errors[0]['row']}: {errors[0]['error']} (fix the mapping, or tick "
                                 "'Skip bad rows')")
    return bool(form.errors)


def _start_import(request, token: str, entry: dict, options: ImportOptions):
    if PromptSet.objects.filter(name=entry["set_name"]).exists():
        messages.error(request, f"A prompt set named {entry['set_name']!r} exists now; start again with another name.")
        return redirect("runs:promptset_import")
    with transaction.atomic():
        prompt_set = PromptSet.objects.create(
            name=entry["set_name"], description=entry["description"], source=entry["name"][:500],
            created_by=request.user, status=PromptSet.Status.IMPORTING,
        )
        enqueue_import(prompt_set, entry["location"], options, name=entry["name"], hub=entry["hub"],
                       cleanup=entry["cleanup"])
    request.session.pop(SESSION_PREFIX + token, None)
    messages.success(request, f"Importing {entry['name']} into {prompt_set.name!r}.")
    return redirect("runs:promptset_detail", pk=prompt_set.pk)


def promptset_detail(request, pk: int):
    """A prompt set: import status and progress, report, split counts and its prompts."""
    prompt_set = get_object_or_404(PromptSet.objects.select_related("created_by"), pk=pk)
    counts = prompt_set.prompts.aggregate(
        total=Count("id"), train=Count("id", filter=Q(split="train")), eval=Count("id", filter=Q(split="eval"))
    )
    pairs = ReferencePair.objects.filter(prompt__prompt_set=prompt_set)
    n_pairs = pairs.count()
    # identical or empty reply pairs: kept and shown, but never judged, trained on or counted in agreement
    degenerate = dict(pairs.exclude(degenerate="").values_list("degenerate").annotate(n=Count("id")))
    page = Paginator(prompt_set.prompts.all(), 50).get_page(request.GET.get("page"))
    report = prompt_set.import_report or {}
    return render(request, "runs/promptset_detail.html", {
        "job_lost": import_job_lost(prompt_set),
        "ps": prompt_set, "counts": counts, "n_pairs": n_pairs, "page": page, "report": report,
        "degenerate": degenerate, "n_degenerate": sum(degenerate.values()),
        "error": (report.get("error") or {}).get("message", ""),
        "can_delete": has_role(request.user, OPERATORS) and not prompt_set.runs.exists()
        and (prompt_set.status != PromptSet.Status.IMPORTING or import_job_lost(prompt_set)),
    })


def promptset_progress(request, pk: int):
    """JSON for the progress bar: status, rows_read, prompts, expected, fraction, error."""
    return JsonResponse(import_progress(get_object_or_404(PromptSet, pk=pk)))


@require_POST
@role_required(OPERATORS)
def promptset_delete(request, pk: int):
    """Delete a prompt set no run uses (e.g. a failed import)."""
    prompt_set = get_object_or_404(PromptSet, pk=pk)
    if prompt_set.runs.exists():
        messages.error(request, "Runs use this prompt set; it cannot be deleted.")
        return redirect("runs:promptset_detail", pk=pk)
    if prompt_set.status == PromptSet.Status.IMPORTING and not import_job_lost(prompt_set):
        messages.error(request, "The import is still running.")
        return redirect("runs:promptset_detail", pk=pk)
    name = prompt_set.name
    prompt_set.delete()
    messages.success(request, f"Deleted prompt set {name!r}.")
    return redirect("runs:promptset_list")


def run_export_preferences(request, run_id: int):
    """Export a run's preferences, or its auditors' corrected responses (SFT demonstrations or preference pairs),
    for TRL: the form, a count, and the download (``?download=1``)."""
    run = get_object_or_404(Run.objects.select_related("prompt_set"), pk=run_id)
    rm = run.run_config.reward_model
    initial = {"min_confidence": rm.min_confidence, "position_consistent_only": rm.position_consistent_only}
    form = ExportForm(request.GET if "style" in request.GET else None, initial=initial)
    context = {"run": run, "form": form, "rows": None}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = PreferenceFilters(
            min_confidence=data["min_confidence"], position_consistent_only=data["position_consistent_only"],
            human_verified_only=data["human_verified_only"], split=data["split"] or "",
            prefer_human_labels=False if data["ai_only"] else None,
            # Blind labeling: an auditor's export leaves out the audit pairs they have still to label.
            exclude_comparisons=blinded_comparison_ids(run, request.user),
        )
        conversational = data["style"] == "conversational"
        dataset = export_dataset(run, data["dataset"], filters, conversational=conversational)
        if request.GET.get("download"):
            return _download(dataset, export_stem(run, data["dataset"], data["style"]), data["file_format"])
        context.update(rows=len(dataset), sample=dataset.select(range(min(3, len(dataset)))).to_list(),
                       columns=dataset.column_names, kind=data["dataset"])
    return render(request, "runs/preferences_export.html", context)


def _download(dataset, stem: str, file_format: str) -> FileResponse:
    work = Path(tempfile.mkdtemp(prefix="studio-export-"))
    try:
        handle = tempfile.TemporaryFile()
        if file_format == "jsonl":
            path = save_preferences(dataset, work / f"{stem}.jsonl", "jsonl")
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle)
            filename, content_type = f"{stem}.jsonl", "application/x-ndjson"
        else:
            folder = save_preferences(dataset, work / stem, "disk")
            zip_folder(folder, handle)
            filename, content_type = f"{stem}.zip", "application/zip"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    handle.seek(0)
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
