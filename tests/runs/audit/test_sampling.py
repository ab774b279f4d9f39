from __future__ import annotations

import pytest

from runs.audit import draw_audit_sample
from runs.audit.sampling import allocate, is_uncertain
from runs.models import AuditItem
from tests import factories

pytestmark = pytest.mark.django_db


def judged_run(per_principle=(30, 10)):
    """A run whose comparisons are judged under two principles, with p_a spread over [0.02, 0.98]."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    principles = list(run.constitution_version.principles.all())
    comparisons = {}
    for principle, count in zip(principles, per_principle, strict=True):
        for i in range(count):
            comparison = factories.make_comparison(run, texts=(f"{principle.name} a{i}", f"{principle.name} b{i}"))
            p_a = 0.02 + 0.96 * i / max(1, count - 1)
            factories.make_judgment(comparison, principle, p_a=p_a, position_consistent=(i % 7 != 3))
            comparisons[comparison.pk] = (principle.name, p_a)
    return run, comparisons


def test_allocation_is_proportional_and_capped():
    assert allocate({"x": 30, "y": 10}, 8) == {"x": 6, "y": 2}
    assert allocate({"x": 3, "y": 1}, 10) == {"x": 3, "y": 1}
    assert sum(allocate({"x": 5, "y": 5, "z": 5}, 7).values()) == 7


def test_random_and_uncertain_strata_stratified_by_principle():
    run, comparisons = judged_run()
    result = draw_audit_sample(run, random_size=8, uncertain_size=4, seed=1, margin=0.1)
    assert (result.random, result.uncertain) == (8, 4)
    items = list(AuditItem.objects.filter(run=run).select_related("judgment__principle"))
    random_items = [i for i in items if i.stratum == "random"]
    per_principle = sorted(i.judgment.principle.name for i in random_items)
    assert per_principle == ["Helpful"] * 2 + ["Honest"] * 6
    for i in items:
        assert i.judgment.comparison_id == i.comparison_id
        if i.stratum == "uncertain":
            assert is_uncertain(i.judgment.p_a, i.judgment.position_consistent, 0.1)
    assert len({i.comparison_id for i in items}) == 12


def test_same_seed_draws_the_same_sample_and_topping_up_adds_new_pairs():
    run, _ = judged_run()
    draw_audit_sample(run, random_size=5, uncertain_size=3, seed=7)
    first = set(AuditItem.objects.filter(run=run).values_list("comparison_id", "stratum"))
    AuditItem.objects.filter(run=run).delete()
    draw_audit_sample(run, random_size=5, uncertain_size=3, seed=7)
    assert set(AuditItem.objects.filter(run=run).values_list("comparison_id", "stratum")) == first
    draw_audit_sample(run, random_size=5, seed=8)
    assert AuditItem.objects.filter(run=run, stratum="random").count() == 10
    assert AuditItem.objects.filter(run=run).count() == len(first) + 5 - _promoted(run, first)


def _promoted(run, first):
    uncertain_before = {c for c, s in first if s == "uncertain"}
    random_now = AuditItem.objects.filter(run=run, stratum="random").values_list("comparison_id", flat=True)
    return len(uncertain_before & set(random_now))


def test_drawing_everything_at_random_promotes_uncertain_items():
    run, comparisons = judged_run((6, 4))
    draw_audit_sample(run, random_size=0, uncertain_size=3, seed=0)
    result = draw_audit_sample(run, random_size=10, seed=0)
    assert result.promoted == 3 and result.random == 7
    assert AuditItem.objects.filter(run=run, stratum="random").count() == 10
    assert not AuditItem.objects.filter(run=run, stratum="uncertain").exists()


def test_failed_judgments_are_not_drawn_and_sizes_are_validated():
    run = factories.make_run()
    ok = factories.make_comparison(run)
    factories.make_judgment(ok, p_a=0.9)
    failed = factories.make_comparison(run, texts=("x", "y"))
    factories.make_judgment(failed, p_a=None, verdict="")
    assert draw_audit_sample(run, random_size=5).random == 1
    assert list(AuditItem.objects.filter(run=run).values_list("comparison_id", flat=True)) == [ok.pk]
    with pytest.raises(ValueError, match=">= 0"):
        draw_audit_sample(run, random_size=-1)
    with pytest.raises(ValueError, match="margin"):
        draw_audit_sample(run, random_size=1, margin=0.7)
