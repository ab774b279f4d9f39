"""Audit figures broken down by the pairs' subset (the prompt's metadata["subset"], kept at import)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.audit import build_report
from runs.models import Prompt
from tests import factories

pytestmark = pytest.mark.django_db


def test_report_and_dashboard_break_figures_down_by_subset(client, viewer):
    prompt_set = factories.make_prompt_set(n=2)
    first, second = prompt_set.prompts.order_by("index")
    Prompt.objects.filter(pk=first.pk).update(metadata={"subset": "math"})
    Prompt.objects.filter(pk=second.pk).update(metadata={"subset": "code"})
    run = factories.make_run(prompt_set=prompt_set, stages=("label",))
    for prompt, verdicts in ((first, ["A", "A", "B"]), (second, ["B"])):
        for i, verdict in enumerate(verdicts):
            comparison = factories.make_comparison(run, prompt, texts=(f"{prompt.pk}a{i}", f"{prompt.pk}b{i}"))
            factories.make_judgment(comparison, p_a=0.9 if verdict == "A" else 0.1)
            factories.make_label(comparison, "A", external_annotator="set:0")
    report = build_report(run, "labelled")
    assert set(report["subsets"]) == {"math", "code"}
    math = {r["key"]: r for r in report["subsets"]["math"]["conventions"]["rows"]}
    assert (math["with_ties"]["judge"]["value"], math["with_ties"]["judge"]["n"]) == (pytest.approx(2 / 3), 3)
    code = {r["key"]: r for r in report["subsets"]["code"]["conventions"]["rows"]}
    assert code["with_ties"]["judge"]["value"] == 0.0
    client.force_login(viewer)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk]) + "?scope=labelled").content.decode()
    assert 'data-subset="math"' in page and 'data-subset="code"' in page
