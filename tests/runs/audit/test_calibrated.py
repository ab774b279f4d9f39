"""Human-calibrated figures on the audit dashboard: PPI of alignment and of the evaluation win rate, and the
length-controlled win rate, computed from the run's rows."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.audit.calibrated import alignment_estimate, evaluation_estimates
from runs.models import AuditItem, Comparison
from tests import factories
from training.human_calibrated import ppi_mean

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    return factories.make_run(prompt_set=factories.make_prompt_set(n=1), stages=("label",))


def test_alignment_ppi_uses_the_random_stratum_as_labelled_set(run):
    honest = run.constitution_version.principles.get(name="Honest")
    auditor = factories.make_user(roles=("auditors",))
    y, yhat, rest = [], [], []
    for i in range(12):
        p = 0.9 if i % 3 else 0.3
        comparison = factories.make_comparison(run, texts=(f"a{i}", f"b{i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=p)
        if i < 8:
            AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
            human = "A" if i % 2 else "B"
            factories.make_label(comparison, human, auditor=auditor)
            y.append(1.0 if judgment.verdict == human else 0.0)
            yhat.append(max(p, 1 - p))
        else:
            rest.append(max(p, 1 - p))
    est = alignment_estimate(run)
    expected = ppi_mean(y, yhat, rest)
    assert (est["n_labelled"], est["n_unlabelled"]) == (8, 4)
    assert est["value"] == pytest.approx(expected.value) and est["low"] == pytest.approx(expected.low)


def test_evaluation_win_rate_estimates(run, client, viewer):
    auditor = factories.make_user(roles=("auditors",))
    for i in range(10):
        comparison = factories.make_comparison(run, texts=("tuned answer " * (2 + i % 3), "ref"))
        Comparison.objects.filter(pk=comparison.pk).update(purpose="eval")
        factories.make_judgment(comparison, p_a=0.8 if i % 4 else 0.2)
        if i < 4:
            factories.make_label(comparison, "A" if i % 2 else "B", auditor=auditor)
    est = evaluation_estimates(run)
    ppi = est["ppi"]
    assert (ppi["n_labelled"], ppi["n_unlabelled"]) == (4, 6)
    assert ppi["ai_value"] == pytest.approx(7 / 10)  # verdicts: A except i = 0, 4, 8
    assert ppi["human_value"] == pytest.approx(0.5)
    lc = est["length_controlled"]
    assert lc["n"] == 10 and lc["raw"] == pytest.approx(0.7)
    client.force_login(viewer)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    assert 'data-estimate="win_rate"' in page and 'data-estimate="length_controlled"' in page


def test_no_evaluation_no_win_rate_rows(run, client, viewer):
    assert evaluation_estimates(run) is None
    client.force_login(viewer)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    assert 'data-estimate="alignment"' in page and 'data-estimate="win_rate"' not in page
