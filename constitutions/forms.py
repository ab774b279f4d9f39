"""Forms of the constitution pages: the editor (name, judge template, ordered principles, few-shot examples),
fork, import and the judge-prompt preview."""
from __future__ import annotations

from django import forms
from django.forms import formset_factory

from constitutions import validation
from constitutions.io import FORMATS, MAX_FILE_BYTES
from constitutions.models import Category, Constitution, Principle
from constitutions.prompt_sources import prompt_source
from rlaif_site.untrusted import validate_no_bidi_controls


class ConstitutionForm(forms.ModelForm):
    """The constitution's name and description (not versioned: renaming creates no version)."""

    class Meta:
        model = Constitution
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        validate_no_bidi_controls(name)
        return name


class VersionForm(forms.Form):
    """The versioned content besides principles and examples, plus the edit's base version and a note."""

    judge_template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}), strip=False,
        help_text="Placeholders: {principle} {conversation} {response_a} {response_b} {answer_format} "
        "(required), {examples} (optional). Write literal braces as {{ and }}.",
    )
    note = forms.CharField(max_length=validation.NOTE_MAX, required=False, label="Version note",
                           widget=forms.TextInput(attrs={"size": 60, "placeholder": "What changed and why"}))
    allow_ties = forms.BooleanField(
        required=False, label="Allow ties",
        help_text='The judge may answer "Preferred: tie" (off by default, as in Lee et al. 2023).')
    base_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean_judge_template(self) -> str:
        # browsers submit textareas with CRLF line ends: normalise so unchanged content hashes the same
        template = self.cleaned_data["judge_template"].replace("\r\n", "\n")
        problem = validation.template_error(template)
        if problem:
            raise forms.ValidationError(problem)
        return template


class PrincipleForm(forms.Form):
    """One principle of the editor's formset (position comes from the formset's ORDER field)."""

    name = forms.CharField(max_length=validation.PRINCIPLE_NAME_MAX)
    comparison = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Comparison principle",
                                 help_text='The question the judge answers, e.g. "Which response is more honest?"')
    critique_request = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    revision_request = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    weight = forms.FloatField(min_value=0.0, initial=1.0, widget=forms.NumberInput(attrs={"step": "any"}),
                              help_text="Sampling weight per comparison (≥ 0).")
    category = forms.ChoiceField(choices=Category.choices, initial=Category.CUSTOM)
    enabled = forms.BooleanField(required=False, initial=True)

    def has_changed(self) -> bool:
        """Ignore ORDER/DELETE so that an added but untouched (blank) principle is skipped, not an error."""
        return any(name not in ("ORDER", "DELETE") for name in self.changed_data)

    def as_principle(self) -> dict:
        data = self.cleaned_data
        return {f: data[f] for f in ("name", "comparison", "critique_request", "revision_request", "weight",
                                     "category", "enabled")}


class BasePrincipleFormSet(forms.BaseFormSet):
    """Principles in the order of their ORDER field; rules on the whole list from :mod:`validation`."""

    def principles(self) -> list[dict]:
        """The kept principles, in order (call after ``is_valid()``)."""
        return [form.as_principle() for form in self.ordered_forms]

    def clean(self) -> None:
        if any(self.errors):
            return
        kept = self.ordered_forms
        problems = []
        for index, field, message in validation.principle_set_errors([f.as_principle() for f in kept]):
            if index is None:
                problems.append(message[0].upper() + message[1:] + ".")
            else:
                kept[index].add_error(field, message)
        if problems:
            raise forms.ValidationError(problems)


MAX_PRINCIPLES = 500  # keep in step with settings.DATA_UPLOAD_MAX_NUMBER_FIELDS (~9 posted fields each)
PrincipleFormSet = formset_factory(
    PrincipleForm, formset=BasePrincipleFormSet, extra=0, can_order=True, can_delete=True,
    max_num=MAX_PRINCIPLES, validate_max=True,
)


class ExampleForm(forms.Form):
    """One few-shot example shown to the judge before the comparison."""

    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), strip=False)
    response_a = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), strip=False, label="Response A")
    response_b = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), strip=False, label="Response B")
    preferred = forms.ChoiceField(choices=[("A", "A"), ("B", "B")])
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, strip=False)

    def has_changed(self) -> bool:
        return any(name != "DELETE" for name in self.changed_data)

    def clean(self):
        data = super().clean()
        if not self.errors:  # the same rules as a file import (e.g. whitespace-only text is refused)
            for field, message in validation.example_errors(data).items():
                self.add_error(field, message[0].upper() + message[1:] + ".")
        return data


class BaseExampleFormSet(forms.BaseFormSet):
    def examples(self) -> list[dict]:
        """The kept examples in page order (call after ``is_valid()``)."""
        return [
            {f: form.cleaned_data[f] for f in validation.EXAMPLE_FIELDS}
            for i, form in enumerate(self.forms)
            if not self._should_delete_form(form) and (i < self.initial_form_count() or form.has_changed())
        ]


ExampleFormSet = formset_factory(ExampleForm, formset=BaseExampleFormSet, extra=0, can_delete=True)


class ForkForm(forms.Form):
    """Name of the copy made from a version."""

    name = forms.CharField(max_length=validation.CONSTITUTION_NAME_MAX, validators=[validate_no_bidi_controls])

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Constitution.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A constitution named {name!r} already exists.")
        return name


class ImportForm(forms.Form):
    """A constitution file (uploaded or pasted) and where it goes: a new constitution or a new version."""

    file = forms.FileField(required=False, help_text="A .yaml, .yml or .json file (schema: see README).")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}), required=False,
                           strip=False, label="…or paste the file")
    format = forms.ChoiceField(choices=[("", "Detect")] + [(f, f.upper()) for f in FORMATS], required=False)
    into = forms.ModelChoiceField(
        queryset=Constitution.objects.filter(archived=False), required=False, label="Import into",
        empty_label="A new constitution", help_text="Or save it as the next version of an existing constitution.",
    )
    name = forms.CharField(max_length=validation.CONSTITUTION_NAME_MAX, required=False,
                           help_text="For a new constitution: overrides the name in the file.")
    note = forms.CharField(max_length=validation.NOTE_MAX, required=False, label="Version note")

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), data.get("text")
        if upload and text:
            raise forms.ValidationError("Upload a file or paste its text, not both.")
        if not upload and not (text or "").strip():
            raise forms.ValidationError("Upload a file or paste its text.")
        if upload is not None and upload.size > MAX_FILE_BYTES:
            self.add_error("file", f"The file is larger than {MAX_FILE_BYTES // 1024} KiB.")
        return data

    def source(self) -> tuple[bytes | str, str]:
        """``(content, filename)`` of the validated input."""
        upload = self.cleaned_data.get("file")
        if upload:
            return upload.read(), upload.name
        return self.cleaned_data["text"], ""


class PreviewForm(forms.Form):
    """A comparison to render with a version's judge template: a prompt (typed, or picked from a prompt set of
    the registered :mod:`~constitutions.prompt_sources` source), two responses and a principle."""

    prompt_set = forms.ModelChoiceField(queryset=None, required=False, empty_label="(type a prompt instead)")
    prompt = forms.ModelChoiceField(queryset=None, required=False, label="Prompt from the set")
    prompt_text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, strip=False,
                                  label="…or type a prompt")
    response_a = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False, label="Response A")
    response_b = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False, label="Response B")
    principle = forms.ModelChoiceField(queryset=Principle.objects.none())
    judge_template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}), required=False, strip=False,
        label="Judge template (edit to try a change; nothing is saved)",
    )

    PROMPT_CHOICES_LIMIT = 500

    def __init__(self, *args, version, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["principle"].queryset = version.principles.order_by("position")
        self.fields["principle"].label_from_instance = lambda p: p.name + ("" if p.enabled else " (disabled)")
        source = prompt_source()
        if source is None:  # no app offers prompt sets: a typed prompt only
            del self.fields["prompt_set"], self.fields["prompt"]
            return
        self.fields["prompt_set"].queryset = source.prompt_sets()
        prompt_set_id = self.data.get("prompt_set") or self.initial.get("prompt_set")
        picked_set = int(prompt_set_id) if prompt_set_id and str(prompt_set_id).isdigit() else None
        self.fields["prompt"].queryset = source.prompts(picked_set)
        self.fields["prompt"].label_from_instance = lambda p: f"#{p.index}: {p.text[:100]}"

    @property
    def offers_prompt_sets(self) -> bool:
        """Whether prompts can be picked from a prompt set (a source of prompts is registered)."""
        return "prompt" in self.fields

    def limited_prompt_choices(self):
        """The prompt choices to list in the page (the first :attr:`PROMPT_CHOICES_LIMIT` of the set)."""
        if not self.offers_prompt_sets:
            return []
        return self.fields["prompt"].queryset[: self.PROMPT_CHOICES_LIMIT]

    def clean_judge_template(self) -> str:
        # browsers submit textareas with CRLF line ends: normalise so unchanged content hashes the same
        template = self.cleaned_data["judge_template"].replace("\r\n", "\n")
        problem = validation.template_error(template) if template.strip() else None
        if problem:
            raise forms.ValidationError(problem)
        return template

    def clean(self):
        data = super().clean()
        picked, typed = data.get("prompt"), data.get("prompt_text") or ""
        if picked is not None and typed.strip():
            raise forms.ValidationError("Either type a prompt or pick one from a prompt set, not both.")
        if picked is None and not typed.strip():
            raise forms.ValidationError("Type a prompt or pick one from a prompt set.")
        return data

    def conversation(self):
        """The prompt as the judge receives it: text, or chat messages for a chat prompt."""
        picked = self.cleaned_data.get("prompt")
        return picked.conversation if picked is not None else self.cleaned_data["prompt_text"]
