"""Tags and the free-text note of a run: the form the run page posts, and how tags are stored."""
from __future__ import annotations

import re

from django import forms

from rlaif_site.untrusted import bidi_control_error
from runs.models import Run, RunTag

TAG_PATTERN = re.compile(r"[\w.:+-]{1,50}")
MAX_TAGS = 20


def parse_tags(text: str) -> list[str]:
    """Tags from comma- or space-separated text, lower-cased, in order, without repeats.

    Raises:
        forms.ValidationError: a tag longer than 50 characters or with characters other than letters,
            digits and ``_ . : + -``, or more than :data:`MAX_TAGS` tags.
    """
    tags: list[str] = []
    for raw in re.split(r"[,\s]+", text.strip()):
        if not raw:
            continue
        tag = raw.lower()
        if not TAG_PATTERN.fullmatch(tag):
            raise forms.ValidationError(
                f"Tag {raw[:60]!r}: use up to 50 letters, digits and _ . : + - (separate tags with commas)."
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise forms.ValidationError(f"{len(tags)} tags: at most {MAX_TAGS} per run.")
    return tags


class RunNotesForm(forms.Form):
    """Tags (comma-separated) and a note for a run."""

    tags = forms.CharField(required=False, max_length=1100, help_text="Comma-separated, e.g. baseline, beta-sweep")
    note = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data["tags"])

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].replace("\x00", "")
        error = bidi_control_error(note)
        if error:
            raise forms.ValidationError(f"The note {error}.")
        return note


def initial_for(run: Run) -> dict:
    """The form's values for ``run`` as it is now."""
    return {"tags": ", ".join(t.name for t in run.tags.all()), "note": run.note}


def save_notes(run: Run, tags: list[str], note: str) -> None:
    """Replace the run's tags (creating new ones) and note; tags no run uses any more are deleted."""
    run.tags.set([RunTag.objects.get_or_create(name=name)[0] for name in tags])
    run.note = note
    run.save(update_fields=["note"])
    RunTag.objects.filter(runs__isnull=True).delete()
