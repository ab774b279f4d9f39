"""Constitutions: the principles an AI judge applies, versioned so that every label traces to its rules.

A :class:`Constitution` is a name; its content lives in immutable :class:`ConstitutionVersion` rows, each
with ordered :class:`Principle` rows, a judge instructions template and optional few-shot examples.
Versions are created only through :meth:`ConstitutionVersionQuerySet.create_version`; saving an unchanged
content creates nothing; a version a run uses cannot be deleted (``on_delete=PROTECT`` on ``Run``).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse

from constitutions.pins import is_pinned
from rlaif_site.fields import NulFreeCharField, NulFreeJSONField, NulFreeTextField
from rlaif_site.nul import replace_nul
from training import judge_prompt


class ImmutableError(Exception):
    """Raised on an attempt to change or delete a saved constitution version or its principles."""


class VersionConflict(Exception):
    """The version an edit started from is no longer the latest.

    Attributes:
        latest: the :class:`ConstitutionVersion` that now exists.
    """

    def __init__(self, latest: ConstitutionVersion) -> None:
        super().__init__(f"Version {latest.number} was saved since this edit began.")
        self.latest = latest


class Category(models.TextChoices):
    HELPFULNESS = "helpfulness", "Helpfulness"
    HARMLESSNESS = "harmlessness", "Harmlessness"
    HONESTY = "honesty", "Honesty"
    STYLE = "style", "Style"
    CUSTOM = "custom", "Custom"


class Constitution(models.Model):
    name = NulFreeCharField(max_length=200, unique=True)
    description = NulFreeTextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("constitutions:detail", args=[self.pk])

    @property
    def latest_version(self) -> ConstitutionVersion | None:
        return self.versions.order_by("-number").first()


PRINCIPLE_FIELDS = ("name", "comparison", "critique_request", "revision_request", "weight", "category", "enabled")


def content_hash(judge_template: str, few_shot_examples: Sequence[Mapping], principles: Sequence[Mapping],
                 allow_ties: bool = False) -> str:
    """SHA-256 of a version's canonical content (template, examples, ordered principles, and ``allow_ties``
    only when on, so versions saved before ties existed keep their hash)."""
    canonical = {
        "judge_template": judge_template,
        "few_shot_examples": list(few_shot_examples),
        "principles": [{f: p.get(f) for f in PRINCIPLE_FIELDS} for p in principles],
    }
    if allow_ties:
        canonical["allow_ties"] = True
    for p in canonical["principles"]:
        p["weight"] = float(p["weight"] if p["weight"] is not None else 1.0)
        p["enabled"] = bool(p["enabled"] if p["enabled"] is not None else True)
        p["category"] = p["category"] or Category.CUSTOM
        for text_field in ("critique_request", "revision_request"):
            p[text_field] = p[text_field] or ""
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


class ConstitutionVersionQuerySet(models.QuerySet):
    @transaction.atomic
    def create_version(
        self,
        constitution: Constitution,
        *,
        author,
        principles: Sequence[Mapping],
        judge_template: str = judge_prompt.DEFAULT_TEMPLATE,
        few_shot_examples: Sequence[Mapping] = (),
        note: str = "",
        base_version: ConstitutionVersion | None = None,
        check_conflict: bool = False,
        allow_ties: bool = False,
    ) -> tuple[ConstitutionVersion, bool]:
        """Save new content for ``constitution`` as its next version.

        Args:
            principles: ordered dicts with keys of :data:`PRINCIPLE_FIELDS`.
            base_version: the version the edit started from (recorded as the parent).
            check_conflict: refuse when ``base_version`` is no longer the latest.
            allow_ties: the judge may answer "tie" (off by default, as in Lee et al. 2023).

        Returns:
            ``(version, created)``; ``created`` is False when the content equals the latest version's,
            in which case that latest version is returned and nothing is written.

        Raises:
            VersionConflict: ``check_conflict`` and a newer version exists.
            judge_prompt.TemplateError: the template has unknown or missing placeholders.
        """
        # Text from browsers arrives with CRLF line ends; content (and its hash) uses LF only. A NUL (which
        # PostgreSQL cannot store) becomes U+FFFD before hashing, so the hash matches what is stored.
        judge_template = _lf(replace_nul(judge_template))
        principles = [
            {**replace_nul(dict(p)),
             **{f: _lf(replace_nul(p[f])) for f in ("comparison", "critique_request", "revision_request") if p.get(f)}}
            for p in principles
        ]
        few_shot_examples = replace_nul(list(few_shot_examples))
        note = replace_nul(note)
        judge_prompt.validate_template(judge_template)
        # Lock the constitution row so two concurrent saves get consecutive numbers, not a crash.
        Constitution.objects.select_for_update().filter(pk=constitution.pk).first()
        latest = self.filter(constitution=constitution).order_by("-number").first()
        if check_conflict and latest is not None and (base_version is None or latest.pk != base_version.pk):
            raise VersionConflict(latest)
        digest = content_hash(judge_template, few_shot_examples, principles, allow_ties)
        if latest is not None and latest.content_hash == digest:
            return latest, False
        version = self.create(
            constitution=constitution,
            number=(latest.number + 1) if latest else 1,
            parent=base_version if base_version is not None else latest,
            author=author,
            note=note,
            judge_template=judge_template,
            few_shot_examples=list(few_shot_examples),
            content_hash=digest,
            allow_ties=allow_ties,
        )
        Principle.objects.bulk_create(
            Principle(
                version=version,
                position=position,
                name=p["name"],
                comparison=p["comparison"],
                critique_request=p.get("critique_request") or "",
                revision_request=p.get("revision_request") or "",
                weight=p.get("weight", 1.0) if p.get("weight") is not None else 1.0,
                category=p.get("category") or Category.CUSTOM,
                enabled=p.get("enabled", True) if p.get("enabled") is not None else True,
            )
            for position, p in enumerate(principles)
        )
        return version, True


class ConstitutionVersion(models.Model):
    """One immutable state of a constitution."""

    constitution = models.ForeignKey(Constitution, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = NulFreeCharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    content_hash = models.CharField(max_length=64)
    judge_template = NulFreeTextField(default=judge_prompt.DEFAULT_TEMPLATE)
    few_shot_examples = NulFreeJSONField(default=list, blank=True)
    allow_ties = models.BooleanField(
        default=False, help_text='The judge may answer "Preferred: tie" (off by default, as in Lee et al. 2023).')

    objects = ConstitutionVersionQuerySet.as_manager()

    class Meta:
        ordering = ["constitution", "-number"]
        constraints = [models.UniqueConstraint(fields=["constitution", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.constitution.name} v{self.number}"

    def get_absolute_url(self) -> str:
        """The version's page (its principles, template and examples)."""
        return reverse("constitutions:version", args=[self.constitution_id, self.number])

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError(f"{self} is immutable; save a new version instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if is_pinned(self):
            raise ImmutableError(f"{self} is pinned by a run and cannot be deleted.")
        return super().delete(*args, **kwargs)

    def principle_dicts(self) -> list[dict]:
        """The ordered principles as plain dicts (keys of :data:`PRINCIPLE_FIELDS` plus ``id``)."""
        return [
            {"id": p.pk, **{f: getattr(p, f) for f in PRINCIPLE_FIELDS}} for p in self.principles.order_by("position")
        ]


class Principle(models.Model):
    """One rule of a version: a comparison question, with optional critique/revision requests
    (Constitutional AI, Bai et al. 2022) and a weight for sampling it per comparison."""

    version = models.ForeignKey(ConstitutionVersion, on_delete=models.CASCADE, related_name="principles")
    position = models.PositiveIntegerField()
    name = NulFreeCharField(max_length=120)
    comparison = NulFreeTextField(help_text='The question the judge answers, e.g. "Which response is more honest?"')
    critique_request = NulFreeTextField(blank=True)
    revision_request = NulFreeTextField(blank=True)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.CUSTOM)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="unique_principle_position"),
            models.CheckConstraint(condition=Q(weight__gte=0), name="principle_weight_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError("Principles of a saved version are immutable.")
        super().save(*args, **kwargs)

