"""Labels beyond A/B through the API: the next pair says what the audit plan asks beside the choice, and a label
carries ratings (as shown, stored in the comparison's terms) and a corrected response; what the plan does not
ask for, or a principle it does not rate, is refused naming the field. The corrections download as SFT
demonstrations or preference pairs, blind pairs left out."""
from __future__ import annotations

import pytest

from runs.audit import ratings
from runs.models import AuditItem, AuditPlan, HumanLabel
from runs.views.audit import shown_swapped_for
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit():
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    for i in range(2):
        comparison = factories.make_comparison(run, texts=(f"reply alpha {i}", f"reply beta {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9)
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    return run, None


@pytest.fixture
def collecting(audit):
    run, _ = audit
    AuditPlan.objects.create(run=run, collect_ratings=True, collect_corrections=True)
    return run, None, {p.name: p for p in run.constitution_version.principles.all()}


def shown(user, item, side: str) -> str:
    swapped = shown_swapped_for(user.pk, item.comparison_id)
    return "left" if (side == "A") != swapped else "right"


def test_a_label_takes_ratings_and_a_correction(api_as, collecting):
    run, items, p = collecting
    client = api_as("auditor")
    auditor = client.user
    pair = client.get(f"/runs/{run.pk}/audit/next").json()
    assert [r["name"] for r in pair["rating_principles"]] == ["Honest", "Helpful"] and pair["corrections"] is True
    item = AuditItem.objects.get(pk=pair["item_id"])
    a_side = shown(auditor, item, "A")
    url = f"/runs/{run.pk}/audit/items/{item.pk}/label"
    bad = client.post(url, {"choice": a_side, "ticket": pair["ticket"],
                            "ratings": [{"principle_id": 999999, "side": "left", "score": 3}]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "ratings[0].principle_id"
    ok = client.post(url, {"choice": a_side, "ticket": pair["ticket"], "correction": "fixed alpha",
                           "ratings": [{"principle_id": p["Honest"].pk, "side": a_side, "score": 4}]})
    assert ok.status_code == 200, ok.content
    label = HumanLabel.objects.get(comparison=item.comparison, auditor=auditor)
    assert [(r.side, r.score) for r in label.ratings.all()] == [("A", 4)]
    assert (label.correction.rewrites, label.correction.text) == ("A", "fixed alpha")


def test_a_label_refuses_a_correction_the_audit_does_not_collect(api_as, audit):
    run, _ = audit
    client = api_as("auditor")
    pair = client.get(f"/runs/{run.pk}/audit/next").json()
    assert pair["rating_principles"] == [] and pair["corrections"] is False
    response = client.post(f"/runs/{run.pk}/audit/items/{pair['item_id']}/label",
                           {"choice": "left", "ticket": pair["ticket"], "correction": "unasked"})
    assert response.status_code == 400 and response.json()["errors"] == [
        {"path": "correction", "message": "this audit collects no corrected responses"}]


def test_corrections_download_as_sft_or_pairs_without_blind_pairs(api_as, audit):
    run, _ = audit
    writer = factories.make_user("wendy", roles=("auditors",))
    for item in AuditItem.objects.filter(run=run):
        label = factories.make_label(item.comparison, "B", auditor=writer)
        ratings.save_extras(label, correction=f"better than {item.comparison.completion_a.text}", rewrites="B")
    operator = api_as("operator")
    sft = operator.get(f"/runs/{run.pk}/preferences", {"dataset": "sft", "style": "conversational"})
    assert sft.status_code == 200 and sft["X-Rows"] == "2"
    assert sft["Content-Disposition"].endswith(f'filename="run-{run.pk}-corrections-sft-conversational.jsonl"')
    pairs = operator.get(f"/runs/{run.pk}/preferences", {"dataset": "correction_pairs"})
    assert pairs["X-Rows"] == "2"
    blind = api_as("auditor").get(f"/runs/{run.pk}/preferences", {"dataset": "correction_pairs"})
    assert blind["X-Rows"] == "0"  # every pair is still theirs to label blind
    wrong = operator.get(f"/runs/{run.pk}/preferences", {"dataset": "nonsense"})
    assert wrong.status_code == 422 and "dataset" in wrong.json()["errors"][0]["path"]
