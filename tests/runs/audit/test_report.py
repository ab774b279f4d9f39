"""The audit report's length-controlled alignment (Dubois et al. 2024's length control applied to AI-vs-human
agreement): a judge that sides with the longer answer where the humans do is read back at its agreement on pairs
of equal length, overall, beside the plain alignment on the dashboard."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.audit import build_report
from runs.models import AuditItem
from tests import factories

pytestmark = pytest.mark.django_db

#: (length of the human-preferred answer minus the other's, labels, of which the judge agrees)
DESIGN = [(0, 20, 15), (60, 60, 54), (-60, 20, 10)]


def planted_run():
    """100 audited pairs, one label each: the judge agrees with the human on 75% of the pairs of equal length,
    90% where the human picked the answer 60 characters longer, 50% where they picked the shorter one. The log-odds
    are linear in the length term, so the length-controlled alignment is 75% exactly; the plain alignment is 79%.
    Half the disagreements on the shorter side are AI ties (they count as disagreeing)."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1), stages=("label",))
    honest = run.constitution_version.principles.get(name="Honest")
    auditor = factories.make_user(roles=("auditors",))
    i = 0
    for delta, labels, agreeing in DESIGN:
        for k in range(labels):
            human = "A" if k % 2 == 0 else "B"
            longer, shorter = "x" * (100 + max(delta, 0)), "y" * (100 + max(-delta, 0))
            texts = (f"{i} {longer}", f"{i} {shorter}") if human == "A" else (f"{i} {shorter}", f"{i} {longer}")
            if k < agreeing:
                p_a = 0.9 if human == "A" else 0.1
            else:
                p_a = 0.5 if (delta < 0 and k % 2) else (0.1 if human == "A" else 0.9)
            comparison = factories.make_comparison(run, texts=texts)
            judgment = factories.make_judgment(comparison, honest, p_a=p_a)
            AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
            factories.make_label(comparison, human, auditor=auditor)
            i += 1
    return run


def test_overall_report_holds_the_length_controlled_alignment_beside_the_plain_one():
    run = planted_run()
    report = build_report(run, "random")
    figures = report["overall"]["figures"]
    lc = figures["alignment_length_controlled"]
    assert figures["alignment"]["value"] == pytest.approx(0.79) and figures["alignment"]["n"] == 100
    assert lc["value"] == pytest.approx(0.75, abs=1e-6) and lc["n"] == 100 and lc["raw"] == pytest.approx(0.79)
    assert lc["low"] < 0.75 < lc["high"] and lc["length_coefficient"] > 0 and lc["method"] == "bootstrap"
    # a few hundred fits: overall only, not per principle
    assert "alignment_length_controlled" not in report["principles"]["Honest"]["figures"]
    assert build_report(run, "random") == report  # seeded: the same figures on every load


def test_dashboard_shows_it_next_to_the_plain_alignment_with_its_interval_and_n(client, viewer):
    run = planted_run()
    lc = build_report(run, "random")["overall"]["figures"]["alignment_length_controlled"]
    client.force_login(viewer)
    response = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    overall = [row["name"] for row in response.context["overall_rows"]]
    assert overall[:2] == ["alignment", "alignment_length_controlled"]
    row = response.context["overall_rows"][1]
    assert (row["value"], row["n"]) == ("75.0%", 100)
    assert row["interval"] == f"[{lc['low']:.1%}, {lc['high']:.1%}]"
    assert all("alignment_length_controlled" not in [r["name"] for r in rows]
               for _, _, rows in response.context["principle_rows"])
    html = response.content.decode()
    assert 'data-figure="alignment_length_controlled"' in html and "Dubois et al. 2024" in html


def test_without_human_labels_the_figure_is_empty(client, viewer):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1), stages=("label",))
    factories.make_judgment(factories.make_comparison(run), run.constitution_version.principles.first(), p_a=0.9)
    lc = build_report(run, "labelled")["overall"]["figures"]["alignment_length_controlled"]
    assert (lc["value"], lc["low"], lc["high"], lc["n"]) == (None, None, None, 0)
    client.force_login(viewer)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk]) + "?scope=labelled").content.decode()
    assert 'data-figure="alignment_length_controlled"' in page
