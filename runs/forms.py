"""The launch form: constitution version, prompt set, stages, and every field of the run config.

The config fields are generated from the dataclasses of :mod:`training.config` (one form field per config
field, named ``section__field``), so the form, ``manage.py launch_run`` and the config stay in step. The
config is validated by :meth:`training.config.RunConfig.from_dict`; its :class:`ConfigError` is attached to
the form field its dotted path names.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import typing
from collections.abc import Sequence
from typing import Any, Literal

from django import forms

from constitutions.models import ConstitutionVersion
from rlaif_site.untrusted import validate_no_bidi_controls
from runs.models import PromptSet, Stage
from runs.presets import PRESETS, deep_merge
from runs.stages.registry import DEFAULT_STAGES, GPU_STAGES, config_sections, in_pipeline_order
from training.config import ConfigError, RunConfig, field_help

#: Labels for config fields whose name alone is unclear (dotted path -> label).
FIELD_LABELS = {
    "generation.model": "Policy model (hub id, path or demo://)",
    "generation.samples_per_prompt": "Samples per prompt (K)",
    "generation.pairing": "Pairs formed from the samples",
    "generation.max_prompts": "Max prompts (0 = all)",
    "generation.source": "Source (policy samples, or the set's imported reference pairs)",
    "generation.base_url": "Endpoint base URL (openai backend)",
    "generation.api_key_env": "API key environment variable",
    "generation.timeout_s": "Timeout (s)",
    "generation.top_p": "Top-p",
    "judge.timeout_s": "Timeout (s)",
    "judge.principle_sampling": "Principles per comparison (sample one / all)",
    "judge.chain_of_thought": "Rationale before the verdict (chain of thought)",
    "judge.price_per_1k_prompt_tokens": "Price per 1k prompt tokens",
    "judge.price_per_1k_completion_tokens": "Price per 1k completion tokens",
    "reward_model.eval_ratio": "Held-out share for accuracy",
    "reward_model.center_rewards_coefficient": "Reward centering coefficient",
    "policy.checkpoint_every": "Checkpoint every N steps",
    "sft.checkpoint_every": "Checkpoint every N steps",
    "reward_model.checkpoint_every": "Checkpoint every N steps",
    "judge.model": "Judge model",
    "judge.base_url": "Endpoint base URL",
    "judge.api_key_env": "API key environment variable",
    "judge.both_orders": "Ask in both orders (A/B and B/A)",
    "judge.self_consistency": "Self-consistency samples (n)",
    "judge.tie_margin": "Tie margin on |P(A) − 0.5|",
    "judge.budget": "Budget cap (0 = none)",
    "judge.anchor_run": "Drift guard: anchor run id (0 = off)",
    "judge.anchor_source": "Drift guard: anchor verdicts (human labels or AI judgments)",
    "judge.anchor_sample": "Drift guard: anchor pairs re-judged",
    "judge.anchor_min_agreement": "Drift guard: min agreement with the anchor (0–1)",
    "judge.panel": "Panel: more judges (JSON list of what differs from the judge above, e.g. "
                   '[{"model": "other-model"}, {"backend": "openai", "base_url": "…", "model": "…"}])',
    "judge.panel_aggregation": "Panel verdict (majority vote, or mean P(A))",
    "reward_model.base_model": "Reward model backbone",
    "reward_model.min_confidence": "Min confidence |P(A) − 0.5| × 2",
    "reward_model.use_margin": "Soft preference as margin",
    "policy.beta": "KL coefficient β",
    "policy.num_generations": "Rollouts per prompt",
    "policy.reward_source": "Reward from (reward model, or the judge: direct RLAIF)",
    "policy.judge_scoring": "Direct RLAIF: judge scores (pairwise within each prompt, or pointwise 1–10)",
    "policy.repetition_penalty": "Repetition penalty (weight on rep-3; 0 = off)",
    "evaluation.max_prompts": "Max eval prompts (0 = all)",
    **{
        f"{section}.{name}": label
        for section in ("sft", "reward_model", "policy")
        for name, label in (
            ("lora_rank", "LoRA rank (0 = full fine-tune)"),
            ("lora_alpha", "LoRA alpha"),
            ("lora_dropout", "LoRA dropout"),
            ("lora_target_modules", "LoRA target modules (comma-separated; empty = per architecture)"),
            ("merge_adapters", "Save the LoRA adapters merged into a full model"),
            ("launcher", "Where the training runs (in the job, or accelerate launch)"),
            ("num_processes", "Training processes (0 = as the accelerate config says)"),
            ("accelerate_config", "Accelerate config file (empty = STUDIO_ACCELERATE_CONFIG)"),
        )
    },
}
#: Config fields that may not be left empty (the model names).
REQUIRED_TEXT = {"generation.model", "judge.model", "reward_model.base_model"}


def field_name(path: str) -> str:
    """Form field name of a dotted config path: ``judge.concurrency`` → ``judge__concurrency``."""
    return path.replace(".", "__")


def _form_field(path: str, hint, default, help_text: str = "") -> forms.Field:
    label = FIELD_LABELS.get(path, path.split(".")[-1].replace("_", " ").capitalize())
    if typing.get_origin(hint) is Literal:
        choices = [(v, v) for v in typing.get_args(hint)]
        field = forms.ChoiceField(label=label, choices=choices, initial=default)
    elif hint is bool:
        field = forms.BooleanField(label=label, required=False, initial=default)
    elif hint is int:
        field = forms.IntegerField(label=label, initial=default)
    elif hint is float:
        field = forms.FloatField(label=label, initial=default)
    elif typing.get_origin(hint) is list:
        field = JSONListField(label=label, required=False, initial=default)
    else:
        field = forms.CharField(label=label, required=path in REQUIRED_TEXT, initial=default, max_length=500)
    if help_text:  # the config docstring's description, as the field's tooltip (the form stays compact)
        field.widget.attrs["title"] = f"{path}: {help_text}"
    return field


def config_fields() -> list[tuple[str, str, forms.Field]]:
    """Every (dotted path, form field name, field) generated from the config dataclasses."""
    out = []
    section_types = typing.get_type_hints(RunConfig)
    for spec in config_sections():
        section, cls = spec.config_section, section_types[spec.config_section]
        hints = typing.get_type_hints(cls)
        helps = field_help(cls)
        for f in dataclasses.fields(cls):
            path = f"{section}.{f.name}"
            if f.default is not dataclasses.MISSING:
                default = f.default
            else:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            out.append((path, field_name(path), _form_field(path, hints[f.name], default, helps.get(f.name, ""))))
    return out


class OptionalJSONField(forms.JSONField):
    """A JSON field that shows an empty box, not ``null``, when it holds nothing."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class JSONListField(forms.JSONField):
    """A config field holding a list (``judge.panel``), typed as JSON: an empty box is ``[]``; the box shows
    JSON text given as it is (:func:`initial_from_config` gives text)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value):
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return []
        converted = super().to_python(value)
        if not isinstance(converted, list):
            raise forms.ValidationError("must be a JSON list, e.g. [] or [{…}, {…}]", code="invalid")
        return converted

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return "" if not value else super().prepare_value(value)


class LaunchForm(forms.Form):
    """Everything a run needs. ``cleaned_data["config"]`` is the validated, complete config dict."""

    name = forms.CharField(max_length=200, validators=[validate_no_bidi_controls])
    constitution_version = forms.ModelChoiceField(
        queryset=ConstitutionVersion.objects.select_related("constitution").filter(constitution__archived=False)
        .order_by("constitution__name", "-number"),
        label="Constitution version",
    )
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.filter(status=PromptSet.Status.READY))
    stages = forms.MultipleChoiceField(
        choices=Stage.choices, widget=forms.CheckboxSelectMultiple, initial=list(DEFAULT_STAGES),
    )
    preset = forms.ChoiceField(
        required=False, choices=[("", "—")] + [(p.key, p.label) for p in PRESETS.values()],
        help_text="Fills the fields below; change anything afterwards.",
    )
    gpu_queue = forms.BooleanField(
        required=False, label="Training stages on the 'gpu' queue",
        help_text="SFT, reward model, policy and evaluation jobs go to workers started with `rqworker gpu`.",
    )
    audit_gate__min_n = forms.IntegerField(
        label="Audit gate: min labels (0 = no gate)", initial=0, min_value=0, required=False,
        help_text="Pause before reward-model training until the audit has this many human labels…",
    )
    audit_gate__min_alignment = forms.FloatField(
        label="Audit gate: min AI labeler alignment", initial=0.0, required=False,
        help_text="…and this alignment (0–1).",
    )
    extra_config = OptionalJSONField(
        required=False, label="Extra config (JSON, merged over the fields)",
        help_text='e.g. {"timeouts": {"policy": 7200}}', widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, config: dict[str, Any] | None = None, **kwargs) -> None:
        """``config``: a nested config given as it is (``launch_run`` and the API); the form then validates it
        directly instead of building it from the config fields, whose values are ignored, and puts each config
        problem on the field of its dotted path as the page does."""
        super().__init__(*args, **kwargs)
        self.direct_config = copy.deepcopy(config) if config is not None else None
        self.config_paths: dict[str, str] = {}
        for path, name, form_field in config_fields():
            if self.direct_config is not None:
                form_field.required = False
            self.fields[name] = form_field
            self.config_paths[name] = path
        self.fields["stages"].choices = Stage.choices

    # --- layout helpers for the template -----------------------------------------------------------
    def fieldsets(self) -> list[dict[str, Any]]:
        """Config fields grouped by section: ``[{"key", "title", "open", "fields": [BoundField]}]``."""
        groups = []
        for spec in config_sections():
            section, title, is_open = spec.config_section, spec.section_title, spec.section_open
            bound = [self[name] for name, path in self.config_paths.items() if path.startswith(section + ".")]
            groups.append({
                "key": section, "title": title,
                "open": is_open or any(b.errors for b in bound), "fields": bound,
            })
        return groups

    # --- validation --------------------------------------------------------------------------------
    def clean_stages(self) -> list[str]:
        stages = self.cleaned_data["stages"]
        return in_pipeline_order(stages)

    def build_config(self) -> dict[str, Any]:
        """The nested config dict (before validation by RunConfig): the direct config when one was given,
        else built from the cleaned fields, the audit gate and the extra JSON; "GPU queue" routes the training
        stages either way."""
        if self.direct_config is not None:
            data = copy.deepcopy(self.direct_config)
        else:
            data = {}
            for name, path in self.config_paths.items():
                if name not in self.cleaned_data:
                    continue
                section, key = path.split(".", 1)
                data.setdefault(section, {})[key] = self.cleaned_data[name]
            min_n = self.cleaned_data.get("audit_gate__min_n") or 0
            min_alignment = self.cleaned_data.get("audit_gate__min_alignment") or 0.0
            if min_n or min_alignment:
                data["audit_gate"] = {"min_n": min_n, "min_alignment": min_alignment}
            extra = self.cleaned_data.get("extra_config")
            if extra:
                data = deep_merge(data, extra)
        if self.cleaned_data.get("gpu_queue"):
            data["queues"] = {**(data.get("queues") or {}), **{s: "gpu" for s in GPU_STAGES}}
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        extra = cleaned.get("extra_config")
        if extra is not None and extra != "" and not isinstance(extra, dict):
            self.add_error("extra_config", "must be a JSON object")
            return cleaned
        if self.direct_config is None and any(name in self.config_paths or name == "extra_config"
                                              for name in self.errors):
            return cleaned  # the config cannot be built; its fields say why
        try:
            config = RunConfig.from_dict(self.build_config())
        except ConfigError as exc:
            for problem in exc.errors:  # every wrong field at once
                self._attach_config_error(problem)
            return cleaned
        # every problem at once: the run's other fields (name, prompt set, stages) may be wrong too
        if not self._preflight(config) or self.errors:
            return cleaned
        cleaned["config"] = config.to_dict()
        cleaned["run_config"] = config
        return cleaned

    def launch(self, owner):
        """Launch the validated run (:func:`runs.services.launch_run`) and record the pre-flight's fallbacks
        on it as a ``pre-flight`` report artifact. The one launch path of the page, ``launch_run`` and the API."""
        from runs import services

        data = self.cleaned_data
        run = services.launch_run(
            name=data["name"], owner=owner, constitution_version=data["constitution_version"],
            prompt_set=data["prompt_set"], config=data["config"], stages=data["stages"],
        )
        checked = data.get("preflight")
        if checked is not None:
            from runs.models import Artifact

            Artifact.objects.create(run=run, kind=Artifact.Kind.REPORT, name="pre-flight", path="", metrics={
                "fallbacks": checked.fallbacks, "seconds": round(checked.seconds, 2)})
        return run

    def _preflight(self, config: RunConfig) -> bool:
        """Check every model, tokenizer, endpoint, key and stage combination the run needs, in parallel, and
        put every problem on its field at once (:func:`training.preflight.preflight`), with the checks that read
        the database: a reference-pairs run's pairs, a drift guard's anchor run and its anchor pairs
        (:func:`runs.drift.anchor_problem`). The fallbacks the run
        will take (pad = EOS, the transcript prompt format, training stages waiting for a worker on the ``gpu``
        queue: :func:`runs.devices.gpu_worker_fallback`) go to ``cleaned_data["preflight"]``, which the
        launch records on the run."""
        from django.conf import settings

        from runs.devices import gpu_worker_fallback
        from training.preflight import preflight

        stages = self.cleaned_data.get("stages") or []
        result = preflight(config, stages, settings.MODELS_DIR)
        prompt_set = self.cleaned_data.get("prompt_set")
        if config.generation.source == "reference_pairs" and "generate" in stages and prompt_set is not None:
            from runs.models import ReferencePair

            if not ReferencePair.objects.filter(prompt__prompt_set=prompt_set, degenerate="").exists():
                result.problems.append(("generation.source", (
                    f"the prompt set {prompt_set.name!r} has no reference pairs to judge (import pairwise or "
                    "HH-RLHF data with 'Keep reference pairs'), or choose source 'policy'")))
        if config.judge.anchor_run and "label" in stages:
            from runs.drift import anchor_problem

            problem = anchor_problem(config.judge)
            if problem is not None:
                result.problems.append(problem)
        result.fallbacks.update(gpu_worker_fallback(config.queues, stages))  # a warning: the GPU is elsewhere
        for path, message in result.problems:
            self._attach_config_error(ConfigError(path, message))
        self.cleaned_data["preflight"] = result
        return result.ok

    def _attach_config_error(self, exc: ConfigError) -> None:
        """Put ``exc`` on the field its dotted path names (an item of a list field, ``judge.panel[1].model``, on
        the list's field, the message naming the item); paths without a field go to ``extra_config``."""
        name = field_name(exc.path)
        listed = field_name(exc.path.split("[", 1)[0])
        if name in self.fields:
            self.add_error(name, exc.message)
        elif "[" in exc.path and listed in self.fields:
            self.add_error(listed, f"{exc.path}: {exc.message}")
        elif self.direct_config is None and (
            exc.path.split(".")[0] in ("queues", "timeouts") or self.cleaned_data.get("extra_config")
        ):
            self.add_error("extra_config", f"{exc.path}: {exc.message}")
        else:
            self.add_error(None, str(exc))


def initial_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Form initial/data values for a (partial) nested config: ``{"judge": {"concurrency": 4}}`` →
    ``{"judge__concurrency": 4}``; keys the form has no field for go to ``extra_config``."""
    known = {path for path, _name, _f in config_fields()}
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for section, content in config.items():
        if section == "schema_version":  # the form always builds the current schema
            continue
        if section == "audit_gate":
            if content:
                values["audit_gate__min_n"] = content.get("min_n", 0)
                values["audit_gate__min_alignment"] = content.get("min_alignment", 0.0)
            continue
        if section == "queues" and content and set(content.values()) == {"gpu"} and set(content) == set(GPU_STAGES):
            values["gpu_queue"] = True
            continue
        if not isinstance(content, dict) or section in ("queues", "timeouts"):
            if content:
                extra[section] = content
            continue
        for key, value in content.items():
            path = f"{section}.{key}"
            if path in known and isinstance(value, list):  # a list field is JSON text in the form
                values[field_name(path)] = json.dumps(value) if value else ""
            elif path in known:
                values[field_name(path)] = value
            else:
                extra.setdefault(section, {})[key] = value
    if extra:
        values["extra_config"] = json.dumps(extra)
    return values


def direct_launch_form(config: dict[str, Any], **top: Any) -> LaunchForm:
    """A :class:`LaunchForm` for a nested config given as it is (``launch_run``, the API): ``top`` holds the
    run's other fields (name, constitution_version, prompt_set, stages, gpu_queue; model instances or primary
    keys). The config is validated directly, not flattened into form fields and rebuilt."""
    data = {key: getattr(value, "pk", value) for key, value in top.items() if value is not None and value is not False}
    return LaunchForm(data, config=config)


def requested_config(
    preset_key: str | None, config: dict[str, Any] | None, overrides: Sequence[tuple[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """The config and stages a scripted launch asks for (``launch_run`` and the API share the rule): the preset's
    full config (or the defaults), the given sections merged over it, then each dotted override.

    Args:
        preset_key: a key of :data:`runs.presets.PRESETS`, or None.
        config: nested config sections to merge, or None.
        overrides: ``(dotted path, value)`` pairs, e.g. ``("judge.concurrency", 4)``.

    Returns:
        (config, stages): stages are the preset's, or the default stages.

    Raises:
        training.config.ConfigError: an unknown preset (path ``preset``), an empty override path, or an override
            into a value that is not a section (path: the override).
    """
    preset = None
    if preset_key:
        preset = PRESETS.get(preset_key)
        if preset is None:
            raise ConfigError("preset", f"unknown preset {preset_key!r}; one of {', '.join(sorted(PRESETS))}")
    data = preset.full_config() if preset else RunConfig().to_dict()
    data = deep_merge(data, copy.deepcopy(config or {}))
    for dotted, value in overrides:
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError("set", f"the override {dotted!r} has an empty path (expected e.g. judge.concurrency)")
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(dotted, f"{key} is not a section")
        target[keys[-1]] = value
    return data, list(preset.stages if preset else DEFAULT_STAGES)


def presets_for_js() -> dict[str, Any]:
    """Preset data for the launch page's script.

    ``{key: {"values": {field name: value}, "stages": [...], "placeholders": {...}, "description": str}}``.
    """
    out = {}
    for key, preset in PRESETS.items():
        values = initial_from_config(preset.full_config())
        values.setdefault("gpu_queue", False)
        values.setdefault("extra_config", "")
        out[key] = {
            "values": values,
            "stages": list(preset.stages),
            "placeholders": {field_name(p): v for p, v in preset.placeholders.items()},
            "description": preset.description,
            "label": preset.label,
        }
    return out
