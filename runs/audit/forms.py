"""Forms of the audit pages: drawing a sample, a blind label (with the plan's optional ratings and corrected
response), a rationale flag, the audit plan (team, overlap, guidelines, labels beyond A/B) and a reviewer's
decision."""
from __future__ import annotations

import time

from django import forms
from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import Q

from rlaif_site.roles import AUDITORS
from runs.audit.sampling import DEFAULT_MARGIN
from runs.models import AuditPlan, HumanLabel

TICKET_SALT = "runs.audit.label-ticket"
#: Time spent on a pair is capped (a tab left open overnight is not an hour of work).
MAX_SECONDS = 3600.0
#: The longest corrected response taken, in characters.
MAX_CORRECTION = 20_000
RATING_CHOICES = [("", "—")] + [(str(i), str(i)) for i in range(1, 6)]


class SampleForm(forms.Form):
    random_size = forms.IntegerField(
        min_value=0, max_value=100_000, initial=50, label="Random stratum",
        help_text="Comparisons drawn uniformly at random (estimates use these).",
    )
    uncertain_size = forms.IntegerField(
        min_value=0, max_value=100_000, initial=20, label="Uncertain stratum",
        help_text="Comparisons with P(A) near 0.5 or whose two orders disagreed (shown separately).",
    )
    disagree_size = forms.IntegerField(
        min_value=0, max_value=100_000, initial=0, required=False, label="Judges-disagree stratum",
        help_text="Comparisons whose panel of judges gave different verdicts (runs with judge.panel).",
    )
    margin = forms.FloatField(min_value=0.0, max_value=0.5, initial=DEFAULT_MARGIN, label="Uncertainty margin")
    seed = forms.IntegerField(min_value=0, initial=0)

    def clean(self):
        data = super().clean()
        data["disagree_size"] = data.get("disagree_size") or 0
        if not self.errors and data["random_size"] + data["uncertain_size"] + data["disagree_size"] == 0:
            raise forms.ValidationError("Ask for at least one comparison in a stratum.")
        return data


def make_ticket(comparison_id: int, swapped: bool) -> str:
    """A signed token carrying when the pair was shown and in which order (the order cannot be forged)."""
    return signing.dumps({"c": comparison_id, "s": swapped, "t": time.time()}, salt=TICKET_SALT)


class LabelForm(forms.Form):
    """A blind choice on the pair as displayed: ``left`` / ``right`` are mapped back to the comparison's A/B
    by :meth:`comparison_choice` using the order recorded in the ticket; so are the optional ratings
    (:meth:`ratings`) and the side a corrected response rewrites (:mod:`runs.audit.ratings`)."""

    choice = forms.ChoiceField(
        choices=[("left", "A (left)"), ("right", "B (right)"), ("tie", "Tie"), ("skip", "Skip")],
        widget=forms.RadioSelect,
    )
    confidence = forms.TypedChoiceField(
        choices=[("", "—")] + [(str(i), str(i)) for i in range(1, 6)], coerce=int, empty_value=None, required=False,
        help_text="1 (unsure) to 5 (certain)",
    )
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    ticket = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, comparison_id: int, principles=(), corrections: bool = False, **kwargs):
        """Args:
            comparison_id: the pair labelled (the ticket must be for it).
            principles: rate each response 1-5 under these (``rating_<principle id>_left`` / ``_right``,
                optional); empty when the audit plan collects no ratings.
            corrections: offer a ``correction`` field (optional): the auditor's rewrite of the better response.
        """
        super().__init__(*args, **kwargs)
        self.comparison_id = comparison_id
        self.principles = list(principles)
        for principle in self.principles:
            for side, shown in (("left", "A (left)"), ("right", "B (right)")):
                label = f"{principle.name}: {shown}"
                self.fields[f"rating_{principle.pk}_{side}"] = forms.TypedChoiceField(
                    choices=RATING_CHOICES, coerce=int, empty_value=None, required=False, label=label,
                    widget=forms.Select(attrs={"aria-label": f"Rating of {shown} under {principle.name}"}),
                )
        self.corrections = corrections
        if corrections:
            self.fields["correction"] = forms.CharField(
                required=False, max_length=MAX_CORRECTION, strip=False, label="Corrected response",
                widget=forms.Textarea(attrs={"rows": 6}),
                help_text="Optional: rewrite the better response as it should have been. Choose A or B to keep it.",
            )

    @property
    def rating_rows(self) -> list[tuple]:
        """``(principle, left field, right field)`` per rated principle, for the template."""
        return [(p, self[f"rating_{p.pk}_left"], self[f"rating_{p.pk}_right"]) for p in self.principles]

    def clean(self):
        data = super().clean()
        if self.corrections and (data.get("correction") or "").strip() and data.get("choice") in ("tie", "skip"):
            self.add_error("correction", "A corrected response rewrites the better response: choose A (left) or "
                                         "B (right) to keep it, or clear it.")
        return data

    def clean_ticket(self):
        try:
            data = signing.loads(self.cleaned_data["ticket"], salt=TICKET_SALT, max_age=7 * 24 * 3600)
        except signing.BadSignature as exc:
            raise forms.ValidationError("This page is stale or was altered; reload it and label again.") from exc
        if data.get("c") != self.comparison_id:
            raise forms.ValidationError("This label belongs to another pair; reload the page.")
        return data

    @property
    def shown_swapped(self) -> bool:
        return bool(self.cleaned_data["ticket"]["s"])

    @property
    def seconds_spent(self) -> float:
        return round(min(MAX_SECONDS, max(0.0, time.time() - self.cleaned_data["ticket"]["t"])), 2)

    def comparison_choice(self) -> str:
        """The choice in the comparison's terms: "A", "B", "tie" or "skip"."""
        choice = self.cleaned_data["choice"]
        if choice in ("tie", "skip"):
            return choice
        return self._side(choice)

    def _side(self, shown: str) -> str:
        """"left"/"right" as shown → "A"/"B" of the comparison."""
        return "A" if (shown == "left") != self.shown_swapped else "B"

    def ratings(self) -> dict[tuple[int, str], int] | None:
        """The ratings given, ``{(principle id, "A" | "B"): score}`` in the comparison's terms; None when the
        form asks for none."""
        if not self.principles:
            return None
        found = {}
        for principle in self.principles:
            for shown in ("left", "right"):
                score = self.cleaned_data.get(f"rating_{principle.pk}_{shown}")
                if score is not None:
                    found[(principle.pk, self._side(shown))] = score
        return found

    def correction(self) -> str | None:
        """The corrected response ("" when left blank, None when the form asks for none)."""
        return self.cleaned_data.get("correction", "") if self.corrections else None

    def extras_initial(self, ratings: dict[tuple[int, str], int], correction: str, swapped: bool) -> dict:
        """Initial values of the rating and correction fields from stored ones (comparison terms), as shown."""
        initial = {}
        for (principle_id, side), score in ratings.items():
            shown = "left" if (side == "A") != swapped else "right"
            initial[f"rating_{principle_id}_{shown}"] = str(score)
        if self.corrections:
            initial["correction"] = correction
        return initial


class FlagForm(forms.Form):
    rationale_flag = forms.ChoiceField(choices=HumanLabel.Flag.choices, required=False, label="Rationale")


class ImportAnnotationsForm(forms.Form):
    """A Label Studio or Argilla export to bring back as human labels (:mod:`runs.audit.interop`)."""

    file = forms.FileField(help_text="Label Studio: Export → JSON. Argilla: records as JSON Lines or JSON.")
    tool = forms.ChoiceField(
        choices=[("auto", "Detect"), ("label_studio", "Label Studio"), ("argilla", "Argilla")], initial="auto",
        required=False,
    )

    def clean_tool(self) -> str:
        return self.cleaned_data["tool"] or "auto"


#: The most auditors a pair may ask for.
MAX_OVERLAP = 20
MAX_GUIDELINES = 50_000


class AuditorChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


class AuditPlanForm(forms.ModelForm):
    """How the sample is shared out (:mod:`runs.audit.workload`), when pairs go to review, and the guidelines."""

    auditors = AuditorChoiceField(
        queryset=get_user_model().objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        label="Named auditors", help_text="Assigned mode: the sample is shared among these, overlap per pair.",
    )
    overlap = forms.IntegerField(
        min_value=1, max_value=MAX_OVERLAP, initial=1, label="Auditors per pair",
        help_text="The required overlap: how many auditors label each pair (pooled and assigned modes).",
    )
    guidelines = forms.CharField(
        required=False, max_length=MAX_GUIDELINES, widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Markdown, shown beside each pair with the principle's text.",
    )

    class Meta:
        model = AuditPlan
        fields = ["mode", "overlap", "auditors", "review_ai_disagreements", "guidelines", "collect_ratings",
                  "collect_corrections"]
        labels = {"review_ai_disagreements": "Review human-vs-AI disagreements",
                  "collect_ratings": "Ask for a rating (1-5) of each response per principle",
                  "collect_corrections": "Ask for a corrected response"}
        widgets = {"mode": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["auditors"].queryset = (
            get_user_model().objects.filter(Q(groups__name=AUDITORS) | Q(is_superuser=True), is_active=True)
            .distinct().order_by("username")
        )

    def clean(self):
        data = super().clean()
        mode, overlap, team = data.get("mode"), data.get("overlap"), data.get("auditors")
        if mode == AuditPlan.Mode.ASSIGNED and overlap and team is not None:
            if not team:
                self.add_error("auditors", "Assigned mode needs at least one named auditor.")
            elif len(team) < overlap:
                self.add_error("auditors", f"{overlap} auditors per pair needs at least {overlap} named auditors; "
                                           f"{len(team)} chosen.")
        return data


class AdjudicationForm(forms.Form):
    """A reviewer's decision on a pair, in the comparison's terms (A = the first response shown, B = the second)."""

    choice = forms.ChoiceField(choices=[("A", "A is better"), ("B", "B is better"), ("tie", "Tie")],
                               widget=forms.RadioSelect, label="Final label")
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Why: kept with the decision.")
