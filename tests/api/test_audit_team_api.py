"""The audit API follows the audit plan: the next pair is one of mine, a pair given to others is refused, and
the report carries the per-auditor figures."""
from __future__ import annotations

import pytest

from runs.audit import workload
from runs.models import AuditAssignment, AuditItem, AuditPlan
from tests import factories
from tests.api.conftest import Api, token_for

pytestmark = pytest.mark.django_db


def test_next_pair_and_label_follow_an_assigned_plan(api_as):
    run = factories.make_run(prompt_set=factories.make_prompt_set(1))
    principle = run.constitution_version.principles.first()
    for i in range(4):
        comparison = factories.make_comparison(run, texts=(f"good {i}", f"bad {i}"))
        judgment = factories.make_judgment(comparison, principle, p_a=0.9)
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    ann = api_as("auditor")
    bob_user = factories.make_user("bob", roles=("auditors",))
    bob = Api(token_for(bob_user))
    plan = AuditPlan.objects.create(run=run, mode=AuditPlan.Mode.ASSIGNED, overlap=1)
    plan.auditors.set([ann.user, bob_user])
    workload.assign_items(plan)
    mine = set(AuditAssignment.objects.filter(auditor=ann.user).values_list("item_id", flat=True))
    assert len(mine) == 2
    served = []
    while (response := ann.get(f"/runs/{run.pk}/audit/next")).status_code == 200:
        pair = response.json()
        assert pair["remaining"] == 2 - len(served)
        served.append(pair["item_id"])
        assert ann.post(f"/runs/{run.pk}/audit/items/{pair['item_id']}/label",
                        {"choice": "left", "ticket": pair["ticket"]}).status_code == 200
    assert set(served) == mine and response.status_code == 204
    others = bob.get(f"/runs/{run.pk}/audit/next").json()
    assert others["item_id"] not in mine
    refused = ann.post(f"/runs/{run.pk}/audit/items/{others['item_id']}/label",
                       {"choice": "left", "ticket": others["ticket"]})
    assert refused.status_code == 403 and "assigned to other auditors" in refused.json()["detail"]
    report = api_as("viewer").get(f"/runs/{run.pk}/audit/report").json()
    assert [a["name"] for a in report["auditors"]["auditors"]] == ["api-auditor"]
    assert report["auditors"]["auditors"][0]["vs_ai"]["n"] == 2
