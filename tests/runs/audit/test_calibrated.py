"""Human-calibrated figures on the audit dashboard: PPI of alignment and of the evaluation win rate, and the
length-controlled win rate, computed from the run's rows."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.audit.calibrated import alignment_estimate, evaluation_estimates
from runs.models import AuditItem, Comparison
from tests import factories
from training.human_calibrated import length_controlled_win_rate, ppi_mean
from training.panel import verdict_judge_id

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
        factories.make_judgment(comparison, p_a=0.8 if i % 4 else 0.2, judge_id=verdict_judge_id(run.run_config.judge))
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


def eval_pair(run, texts=("tuned", "reference")):
    comparison = factories.make_comparison(run, texts=texts)
    Comparison.objects.filter(pk=comparison.pk).update(purpose="eval")
    return comparison


def test_evaluation_figures_count_the_win_rates_verdicts_under_every_principle(run, client, viewer):
    """Regression: with every principle judged (``principle_sampling: all``) the figures read the first
    principle's judgment alone, so the dashboard's plain AI win rate (0% here) contradicted the run page's
    (100%: the evaluate stage averages P(A) over the principles)."""
    from runs.stages.evaluate import build_report

    honest, helpful = run.constitution_version.principles.order_by("position")
    judge_id = verdict_judge_id(run.run_config.judge)
    auditor = factories.make_user(roles=("auditors",))
    for i in range(4):
        comparison = eval_pair(run, texts=(f"tuned {i}", f"reference {i}"))
        factories.make_judgment(comparison, honest, p_a=0.3, judge_id=judge_id)  # B under the first principle
        factories.make_judgment(comparison, helpful, p_a=0.9, judge_id=judge_id)  # mean 0.6: the tuned wins
        if i < 2:
            factories.make_label(comparison, "A", auditor=auditor)
    stage_rate = build_report(run, run.run_config, Comparison.objects.filter(run=run, purpose="eval"))["win_rate"]
    est = evaluation_estimates(run)
    assert stage_rate["rate"] == 1.0
    assert est["ppi"]["ai_value"] == pytest.approx(1.0) and est["ppi"]["value"] == pytest.approx(1.0)
    assert (est["ppi"]["n_labelled"], est["ppi"]["n_unlabelled"]) == (2, 2)
    assert est["length_controlled"]["raw"] == pytest.approx(1.0) and est["length_controlled"]["n"] == 4


def test_evaluation_figures_leave_out_other_judges_and_failed_judgments(run):
    judge_id = verdict_judge_id(run.run_config.judge)
    counted = eval_pair(run)
    factories.make_judgment(counted, p_a=0.9, judge_id=judge_id)
    factories.make_judgment(eval_pair(run), p_a=0.1, judge_id="openai:someone-else@http://x")
    failed = eval_pair(run)
    factories.make_judgment(failed, p_a=None, verdict="", judge_id=judge_id)
    est = evaluation_estimates(run)
    assert est["length_controlled"]["n"] == 1 and est["ppi"]["ai_value"] == 1.0


def test_length_controlled_figure_reads_each_pairs_lengths(run):
    """The tuned answer is A: its length and the reference's are each pair's own, aligned with its verdict."""
    judge_id = verdict_judge_id(run.run_config.judge)
    texts = [("x" * 30, "y" * 10, 0.9), ("x" * 5, "y" * 25, 0.2), ("x" * 12, "y" * 12, 0.5), ("x" * 40, "y", 0.7)]
    for tuned, reference, p in texts:
        factories.make_judgment(eval_pair(run, texts=(tuned, reference)), p_a=p, judge_id=judge_id)
    expected = length_controlled_win_rate(["A", "B", "tie", "A"], [30, 5, 12, 40], [10, 25, 12, 1], seed=run.pk)
    assert evaluation_estimates(run)["length_controlled"] == pytest.approx(expected.as_dict())


def test_alignment_leaves_out_audited_evaluation_pairs_and_degenerate_pairs(run):
    """Regression: the random stratum is drawn from every judged pair, evaluation pairs included; the estimate
    is over training pairs, so an audited evaluation pair is neither labelled nor unlabelled. Degenerate pairs
    (identical replies) are out of the AI-only set as they are out of the audit."""
    honest = run.constitution_version.principles.get(name="Honest")
    auditor = factories.make_user(roles=("auditors",))
    for i in range(4):
        comparison = factories.make_comparison(run, texts=(f"a{i}", f"b{i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9)
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
        factories.make_label(comparison, "A" if i else "B", auditor=auditor)
    evaluation = eval_pair(run)
    judgment = factories.make_judgment(evaluation, honest, p_a=0.9)
    AuditItem.objects.create(run=run, comparison=evaluation, judgment=judgment, stratum="random")
    factories.make_label(evaluation, "B", auditor=auditor)
    factories.make_judgment(factories.make_comparison(run, texts=("c", "d")), honest, p_a=0.2)
    factories.make_judgment(factories.make_comparison(run, texts=("same", "same")), honest, p_a=0.6)
    est = alignment_estimate(run)
    assert (est["n_labelled"], est["n_unlabelled"]) == (4, 1)
    assert est == pytest.approx(ppi_mean([0.0, 1.0, 1.0, 1.0], [0.9] * 4, [0.8]).as_dict())
