"""Forms of the prompt-set import flow and the preference export."""
from __future__ import annotations

from django import forms

from rlaif_site.untrusted import validate_no_bidi_controls
from runs.exporting import DATASETS
from runs.importing import LAYOUTS, ImportOptions
from runs.importing.errors import BadInput
from runs.importing.options import parse_label_map
from runs.importing.readers import HUB_ID
from runs.models import PromptSet


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files at once (Django's documented pattern): one data file, a .zip of a save_to_disk folder,
    or the files of a save_to_disk folder."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    """Step 1: what to import and the new set's name."""

    name = forms.CharField(max_length=200, validators=[validate_no_bidi_controls])
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    files = MultipleFileField(
        required=False,
        help_text="A .jsonl, .json, .csv (optionally .gz) or .parquet file, a .zip of a save_to_disk folder, "
        "or all files of a save_to_disk folder.",
    )
    hub_id = forms.CharField(required=False, max_length=200, label="or a Hugging Face Hub dataset id",
                             help_text="owner/name; needs the hub to be reachable from this server.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if PromptSet.objects.filter(name=name).exists():
            raise forms.ValidationError("A prompt set with this name exists.")
        return name

    def clean_hub_id(self):
        hub_id = self.cleaned_data["hub_id"].strip()
        if hub_id and not HUB_ID.match(hub_id):
            raise forms.ValidationError("Not a dataset id (owner/name).")
        return hub_id

    def clean(self):
        data = super().clean()
        files, hub_id = data.get("files") or [], data.get("hub_id")
        if bool(files) == bool(hub_id):
            raise forms.ValidationError("Upload a file (or a folder's files) or give a hub dataset id, not both.")
        return data


_COLUMN_FIELDS = ("prompt_column", "input_column", "messages_column", "chosen_column", "rejected_column",
                  "response_a_column", "response_b_column", "label_column")


class ImportOptionsForm(forms.Form):
    """Step 2: the column mapping and import options (see :class:`runs.importing.ImportOptions`)."""

    layout = forms.ChoiceField(choices=[
        ("text", "Text: a prompt column"),
        ("messages", "Chat: a messages column (role/content)"),
        ("hh_rlhf", "Anthropic HH-RLHF chosen/rejected transcripts"),
        ("pairwise", "Pairwise: prompt, two responses, human label or votes"),
    ])
    prompt_column = forms.CharField(required=False)
    input_column = forms.CharField(required=False, help_text="Appended to the prompt after a blank line.")
    messages_column = forms.CharField(required=False)
    chosen_column = forms.CharField(required=False)
    rejected_column = forms.CharField(required=False)
    response_a_column = forms.CharField(required=False)
    response_b_column = forms.CharField(required=False)
    label_column = forms.CharField(required=False, help_text="Values A/B/tie; any other values need a label map.")
    vote_columns = forms.CharField(required=False, help_text="Comma-separated annotator columns.")
    label_map = forms.CharField(
        required=False, label="Label map",
        help_text="Required when labels or votes are not A/B/tie, e.g. 1=A, 2=B, 0=tie (PandaLM) or "
                  "0=A, 1=B, 2=tie: integer schemes differ between data sets, so they are never guessed.",
    )
    subset_column = forms.CharField(required=False, help_text="Kept as the pair's subset (scenario, category); "
                                                              "the audit breaks its figures down by it.")
    a_is_chosen = forms.BooleanField(
        required=False, label="Response A is the chosen one",
        help_text="Without a label or votes: column A always holds the preferred reply (TRL's prompt/chosen/rejected).",
    )
    keep_reference_pairs = forms.BooleanField(required=False, initial=True,
                                              help_text="Keep the two responses and the human label.")
    pair_source = forms.CharField(required=False, max_length=100, help_text="Name stored with reference pairs.")
    dedupe = forms.ChoiceField(choices=[("prompt", "one row per prompt"), ("pair", "one row per prompt and pair"),
                                        ("none", "every row (benchmark items)")], initial="prompt")
    metadata_columns = forms.CharField(required=False, help_text="Comma-separated columns kept as metadata.")
    seed = forms.IntegerField(initial=0)
    eval_ratio = forms.FloatField(initial=0.1, min_value=0.0, max_value=1.0)
    limit = forms.IntegerField(initial=0, min_value=0, help_text="At most this many prompts (0 = all).")
    shuffle = forms.BooleanField(required=False)
    skip_bad_rows = forms.BooleanField(required=False, help_text="Skip and list bad rows instead of failing.")
    scalars_as_text = forms.BooleanField(
        required=False, label="Numbers and true/false as text",
        help_text="Store a number or a JSON true/false found where a prompt or reply belongs as text (noted per row).",
    )
    max_prompt_chars = forms.IntegerField(initial=ImportOptions.max_prompt_chars, min_value=1)
    dataset_split = forms.CharField(required=False, help_text="Split of a DatasetDict folder or hub dataset.")
    dataset_config = forms.CharField(required=False, help_text="Hub dataset config.")

    def clean_label_map(self) -> dict[str, str]:
        try:
            return parse_label_map(self.cleaned_data.get("label_map") or "")
        except BadInput as exc:
            raise forms.ValidationError(exc.message) from None

    def to_options(self) -> ImportOptions:
        """The options; a required column left blank takes its usual name (``prompt``, ``chosen``, ...)."""
        data = self.cleaned_data
        values = {name: (data.get(name) or "").strip() for name in _COLUMN_FIELDS}
        for name in _COLUMN_FIELDS:
            if not values[name] and layout_needs(data["layout"], name):
                values[name] = getattr(ImportOptions, name)
        return ImportOptions(
            layout=data["layout"], **values,
            vote_columns=_split(data.get("vote_columns")), metadata_columns=_split(data.get("metadata_columns")),
            keep_reference_pairs=data.get("keep_reference_pairs", False), pair_source=data.get("pair_source") or "",
            dedupe=data["dedupe"], seed=data["seed"], eval_ratio=data["eval_ratio"], limit=data["limit"],
            shuffle=data.get("shuffle", False), skip_bad_rows=data.get("skip_bad_rows", False),
            scalars_as_text=data.get("scalars_as_text", False), a_is_chosen=data.get("a_is_chosen", False),
            max_prompt_chars=data["max_prompt_chars"], dataset_split=data.get("dataset_split") or "",
            dataset_config=data.get("dataset_config") or "",
            label_map=data.get("label_map") or {}, subset_column=(data.get("subset_column") or "").strip(),
        )

    def column_fields(self) -> list[tuple[forms.BoundField, str]]:
        """The column-mapping fields with the space-separated layouts each applies to."""
        return [(self[name], self.field_layouts[name]) for name in _COLUMN_FIELDS]

    @property
    def field_layouts(self) -> dict[str, str]:
        """Mapping field name → the space-separated layouts it applies to (:data:`FIELD_LAYOUTS`)."""
        return {name: " ".join(layouts) for name, layouts in FIELD_LAYOUTS.items()}

    @staticmethod
    def initial_from(options: dict) -> dict:
        """Form initial values from ImportOptions-like values (e.g. the suggested mapping)."""
        initial = dict(options)
        for name in ("vote_columns", "metadata_columns"):
            if isinstance(initial.get(name), list):
                initial[name] = ", ".join(initial[name])
        if isinstance(initial.get("label_map"), dict):
            initial["label_map"] = ", ".join(f"{k}={v}" for k, v in initial["label_map"].items())
        return initial


_LAYOUT_COLUMNS = {
    "text": {"prompt_column"},
    "messages": {"messages_column"},
    "hh_rlhf": {"chosen_column", "rejected_column"},
    "pairwise": {"prompt_column", "response_a_column", "response_b_column"},
}


#: The layouts each mapping field applies to (the import page shows only those of the chosen layout).
FIELD_LAYOUTS = {
    "prompt_column": ("text", "pairwise"),
    "input_column": ("text", "pairwise"),
    "messages_column": ("messages",),
    "chosen_column": ("hh_rlhf",),
    "rejected_column": ("hh_rlhf",),
    "response_a_column": ("pairwise",),
    "response_b_column": ("pairwise",),
    "label_column": ("pairwise",),
    "vote_columns": ("pairwise",),
    "label_map": ("pairwise",),
    "subset_column": ("pairwise", "text"),
    "a_is_chosen": ("pairwise",),
    "keep_reference_pairs": ("hh_rlhf", "pairwise"),
}


def layout_needs(layout: str, column_field: str) -> bool:
    """True when ``layout`` requires the column named by form field ``column_field``."""
    return column_field in _LAYOUT_COLUMNS.get(layout, set())


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class ExportForm(forms.Form):
    """What to export (a run's preferences, or its corrected responses: :data:`runs.exporting.DATASETS`), its
    filters and format."""

    dataset = forms.ChoiceField(choices=list(DATASETS.items()), initial="preferences", required=False,
                                label="Dataset")
    style = forms.ChoiceField(choices=[("standard", "Standard (prompt/chosen/rejected text)"),
                                       ("conversational", "Conversational (messages)")], initial="standard")
    file_format = forms.ChoiceField(choices=[("jsonl", "JSON lines"), ("disk", "datasets save_to_disk (.zip)")],
                                    initial="jsonl")
    min_confidence = forms.FloatField(initial=0.0, min_value=0.0, max_value=1.0,
                                      help_text="|p_a − 0.5| × 2 of AI-decided rows.")
    position_consistent_only = forms.BooleanField(required=False)
    human_verified_only = forms.BooleanField(required=False)
    split = forms.ChoiceField(choices=[("", "all"), ("train", "train"), ("eval", "eval")], required=False)
    ai_only = forms.BooleanField(required=False, label="Ignore human labels",
                                 help_text="Let the AI verdict decide even where humans labelled.")

    def clean_dataset(self) -> str:
        return self.cleaned_data["dataset"] or "preferences"


assert set(LAYOUTS) == set(_LAYOUT_COLUMNS)
