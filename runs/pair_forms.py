"""Forms of the pair browser's actions: a bulk action on the matching pairs, and saving a view. The filters travel
beside them as the browser's own query parameters (validated by :func:`runs.views.pairs.filter_judgments`)."""
from __future__ import annotations

from django import forms

from rlaif_site.untrusted import validate_no_bidi_controls

ACTIONS = {
    "add_to_audit": "Add to the audit sample",
    "flag": "Flag",
    "unflag": "Remove my flags",
}


class BulkActionForm(forms.Form):
    """A bulk action on every pair the filters match. ``confirm`` is the number of pairs the user was shown on
    the confirmation page: the action runs only when the filters still match that many."""

    action = forms.ChoiceField(choices=list(ACTIONS.items()))
    note = forms.CharField(required=False, max_length=200, help_text="Flags: why (kept with each flag).")
    confirm = forms.IntegerField(required=False, min_value=0)


class SavedViewForm(forms.Form):
    """The name of a saved view (a name already used on this run replaces that view)."""

    name = forms.CharField(max_length=100, validators=[validate_no_bidi_controls],
                           error_messages={"required": "Give the view a name."})

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the view a name.")
        return name
