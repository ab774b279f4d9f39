"""Labels beyond A/B (runs.audit.ratings): storing ratings and corrections with a label, the per-principle means
per side aggregated in the database, and the count of corrections."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from runs.audit import ratings
from runs.models import CorrectedResponse, ResponseRating
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated_run():
    version = factories.make_version(principles=[
        factories.principle("Honest"), factories.principle("Helpful"), factories.principle("Muted", enabled=False)])
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(n=1))
    principles = {p.name: p for p in version.principles.all()}
    return run, principles


def test_rated_principles_are_the_enabled_ones_in_order(rated_run):
    run, _ = rated_run
    assert [p.name for p in ratings.rated_principles(run)] == ["Honest", "Helpful"]


def test_save_extras_replaces_ratings_and_keeps_or_clears_the_correction(rated_run, auditor):
    run, p = rated_run
    label = factories.make_label(factories.make_comparison(run), "A", auditor=auditor)
    ratings.save_extras(label, ratings={(p["Honest"].pk, "A"): 5, (p["Honest"].pk, "B"): 2},
                        correction="A better answer.", rewrites="A")
    assert ratings.stored_extras(label)[0] == {(p["Honest"].pk, "A"): 5, (p["Honest"].pk, "B"): 2}
    assert CorrectedResponse.objects.get(label=label).text == "A better answer."
    # None leaves things as they are; {} and "" clear them
    ratings.save_extras(label, ratings=None, correction=None)
    assert ResponseRating.objects.filter(label=label).count() == 2 and CorrectedResponse.objects.exists()
    ratings.save_extras(label, ratings={(p["Helpful"].pk, "B"): 3}, correction="  ")
    assert ratings.stored_extras(label) == ({(p["Helpful"].pk, "B"): 3}, None)
    with pytest.raises(ValueError, match="score from 1 to 5"):
        ratings.save_extras(label, ratings={(p["Helpful"].pk, "B"): 6})
    with pytest.raises(ValueError, match="rewrites response A or B"):
        ratings.save_extras(label, correction="text", rewrites="tie")


def test_the_database_refuses_a_score_outside_the_scale(rated_run, auditor):
    run, p = rated_run
    label = factories.make_label(factories.make_comparison(run), "A", auditor=auditor)
    with pytest.raises(IntegrityError), transaction.atomic():
        ResponseRating.objects.create(label=label, principle=p["Honest"], side="A", score=0)


def test_rating_summary_means_per_principle_and_side(rated_run):
    run, p = rated_run
    honest, helpful = p["Honest"].pk, p["Helpful"].pk
    ann, bob = (factories.make_user(n, roles=("auditors",)) for n in ("ann", "bob"))
    first, second = factories.make_comparison(run), factories.make_comparison(run, texts=("x", "y"))
    ratings.save_extras(factories.make_label(first, "A", auditor=ann),
                        ratings={(honest, "A"): 5, (honest, "B"): 2, (helpful, "A"): 4})
    ratings.save_extras(factories.make_label(first, "B", auditor=bob), ratings={(honest, "A"): 3, (honest, "B"): 4})
    ratings.save_extras(factories.make_label(second, "tie", auditor=ann), ratings={(honest, "A"): 1})
    summary = {row["principle"]: row for row in ratings.rating_summary(run)}
    assert list(summary) == ["Honest", "Helpful"]
    h = summary["Honest"]
    assert (h["mean_a"], h["n_a"]) == (pytest.approx(3.0), 3)  # 5, 3, 1
    assert (h["mean_b"], h["n_b"]) == (pytest.approx(3.0), 2)  # 2, 4
    # preferred: ann's A (5) and bob's B (4); other: ann's B (2) and bob's A (3); the tie counts in neither
    assert (h["mean_preferred"], h["n_preferred"]) == (pytest.approx(4.5), 2)
    assert (h["mean_other"], h["n_other"]) == (pytest.approx(2.5), 2)
    assert (summary["Helpful"]["mean_a"], summary["Helpful"]["mean_b"], summary["Helpful"]["n_b"]) == (4.0, None, 0)


def test_correction_counts(rated_run):
    run, _ = rated_run
    ann, bob = (factories.make_user(n, roles=("auditors",)) for n in ("ann", "bob"))
    first, second = factories.make_comparison(run), factories.make_comparison(run, texts=("x", "y"))
    for comparison, user in ((first, ann), (first, bob), (second, ann)):
        ratings.save_extras(factories.make_label(comparison, "B", auditor=user), correction="fixed", rewrites="B")
    assert ratings.correction_counts(run) == {"corrections": 3, "pairs": 2, "auditors": 2}
    assert ratings.correction_counts(factories.make_run()) == {"corrections": 0, "pairs": 0, "auditors": 0}
