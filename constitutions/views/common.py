"""Lookups shared by the constitution views."""
from __future__ import annotations

from django.shortcuts import get_object_or_404

from constitutions.models import ConstitutionVersion


def get_version(pk: int, number: int) -> ConstitutionVersion:
    """The version ``number`` of constitution ``pk``, with its constitution and author; 404 when absent."""
    return get_object_or_404(
        ConstitutionVersion.objects.select_related("constitution", "author"), constitution_id=pk, number=number
    )


def content_of(version: ConstitutionVersion) -> dict:
    """Keyword arguments of ``create_version`` that reproduce ``version``'s content exactly."""
    return {
        "principles": [{k: v for k, v in p.items() if k != "id"} for p in version.principle_dicts()],
        "judge_template": version.judge_template,
        "few_shot_examples": list(version.few_shot_examples),
        "allow_ties": version.allow_ties,
    }
