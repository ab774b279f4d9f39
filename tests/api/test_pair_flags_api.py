"""The judgments API takes the pair browser's ``flagged`` and ``audit=sampled`` filters."""
from __future__ import annotations

import pytest

from runs.models import AuditItem, PairFlag
from tests import factories

pytestmark = pytest.mark.django_db


def test_judgments_filtered_by_flag_and_audit_sample(api_as):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    comparisons = [factories.make_comparison(run, texts=(f"a {i}", f"b {i}")) for i in range(3)]
    judgments = [factories.make_judgment(c) for c in comparisons]
    api = api_as("operator")
    PairFlag.objects.create(comparison=comparisons[0], flagged_by=api.user, note="odd")
    AuditItem.objects.create(run=run, comparison=comparisons[1], judgment=judgments[1], stratum="chosen")

    def ids(**params):
        page = api.get(f"/runs/{run.pk}/judgments", params).json()
        return [item["comparison_id"] for item in page["items"]], page["applied"]

    assert ids(flagged="yes") == ([comparisons[0].pk], {"flagged": "yes"})
    assert ids(flagged="no")[0] == [comparisons[2].pk, comparisons[1].pk]
    assert ids(audit="sampled") == ([comparisons[1].pk], {"audit": "sampled"})
    assert ids(flagged="maybe")[1] == {}
