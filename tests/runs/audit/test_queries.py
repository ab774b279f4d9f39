from __future__ import annotations

import pytest

from runs import gate
from runs.audit import alignment_counts, audit_rows, build_report, disagreements, human_majority
from runs.models import AuditItem, Comparison
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def audited(auditor):
    """Four audited comparisons (random stratum) with AI verdicts A, B, A, tie and two auditors' labels."""
    second = factories.make_user("bea", roles=("auditors",))
    run = factories.make_run(
        prompt_set=factories.make_prompt_set(n=1), config={"audit_gate": {"min_n": 4, "min_alignment": 0.7}}
    )
    honest = run.constitution_version.principles.get(name="Honest")
    rows = [  # (p_a, verdict, texts, first auditor, second auditor)
        (0.9, "A", ("a long answer here", "short"), "A", "A"),
        (0.2, "B", ("short", "a long answer here"), "A", "B"),
        (0.7, "A", ("mid", "middle"), "B", None),
        (0.52, "tie", ("x", "yy"), "tie", "skip"),
    ]
    comparisons = []
    for p_a, verdict, texts, first, other in rows:
        comparison = factories.make_comparison(run, texts=texts)
        judgment = factories.make_judgment(comparison, honest, p_a=p_a, verdict=verdict, rationale=f"because {p_a}")
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
        factories.make_label(comparison, first, auditor=auditor)
        if other:
            factories.make_label(comparison, other, auditor=second)
        comparisons.append(comparison)
    return run, comparisons


def test_human_majority_is_the_plurality_and_a_shared_top_is_a_tie(audited):
    run, (c1, c2, c3, c4) = audited
    factories.make_label(c3, "B", external_annotator="pandalm:1")
    factories.make_label(c3, "A", external_annotator="pandalm:2")
    majority = human_majority(Comparison.objects.filter(run=run))
    # c1: A,A -> A; c2: A,B -> tie; c3: B,B,A -> B; c4: tie (+ a skip that does not count) -> tie
    assert majority == {c1.pk: "A", c2.pk: "tie", c3.pk: "B", c4.pk: "tie"}
    assert human_majority(Comparison.objects.filter(pk=c1.pk)) == {c1.pk: "A"}


def test_alignment_counts_and_the_gate(audited):
    run, _ = audited
    # decisive labels: c1 A,A (AI A: 2 agree); c2 A,B (AI B: 1 agrees); c3 B (AI A: 0) -> 3 of 5
    assert alignment_counts(run) == (3, 5)
    assert alignment_counts(run, "uncertain") == (0, 0)
    reason = gate.gate_reason(run, "reward_model")
    assert "AI labeler alignment 60% (95% CI 23%–88%, n=5) is below the required 70%" in reason
    assert gate.gate_reason(run, "policy") is None
    run.config["audit_gate"]["min_alignment"] = 0.6
    assert gate.gate_reason(run, "reward_model") is None
    run.config["audit_gate"]["min_n"] = 6
    assert "5 of 6 human labels" in gate.gate_reason(run, "reward_model")


def test_report_figures_on_the_fixed_table(audited):
    run, _ = audited
    report = build_report(run, "random")
    overall = report["overall"]
    assert (overall["n_items"], overall["n_labelled"], overall["n_labels"]) == (4, 4, 6)
    figures = overall["figures"]
    assert figures["alignment"]["value"] == pytest.approx(3 / 5) and figures["alignment"]["n"] == 5
    # AI vs human pairs: (A,A) (A,A) (B,A) (B,B) (A,B) (tie,tie) -> rows human, columns AI
    assert overall["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    # kappa: p_o = 4/6; human marginals 3,2,1; AI 3,2,1 -> p_e = 14/36; (24/36 - 14/36) / (22/36) = 10/22
    assert figures["kappa"]["value"] == pytest.approx(10 / 22)
    # alpha over pairs with 2 labels: (A,A) and (A,B) -> n=4 values A3 B1; D_o 2/1, expected 16-10=6; 1-3*2/6 = 0
    assert figures["alpha"]["value"] == pytest.approx(0.0) and figures["alpha"]["n"] == 2
    # AI prefers longer: c1 A longer chose A (yes), c2 B longer chose B (yes), c3 B longer chose A (no)
    assert figures["ai_prefers_longer"]["value"] == pytest.approx(2 / 3)
    # humans: c1 A,A yes yes; c2 A no, B yes; c3 B yes -> 4 of 5
    assert figures["human_prefers_longer"]["value"] == pytest.approx(4 / 5)
    assert figures["position_consistency"] == {**figures["position_consistency"], "value": 1.0, "n": 4}
    assert list(report["principles"]) == ["Honest"]
    assert report["principles"]["Honest"]["figures"]["alignment"] == figures["alignment"]
    assert build_report(run, "uncertain")["overall"]["n_items"] == 0


def test_labelled_scope_counts_external_annotators_without_an_audit_sample(auditor):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    comparison = factories.make_comparison(run)
    factories.make_judgment(comparison, p_a=0.9)
    for i, vote in enumerate(["A", "A", "B"]):
        factories.make_label(comparison, vote, external_annotator=f"pandalm:{i}")
    rows = audit_rows(run, "labelled")
    assert [(r.verdict, sorted(c for _, c in r.labels)) for r in rows] == [("A", ["A", "A", "B"])]
    assert build_report(run, "labelled")["overall"]["figures"]["alignment"]["value"] == pytest.approx(2 / 3)
    assert audit_rows(run, "random") == []
    with pytest.raises(ValueError, match="unknown audit scope"):
        audit_rows(run, "everything")


def test_disagreements_list_majority_mismatches_and_flags(audited):
    run, (c1, c2, c3, c4) = audited
    label = c1.human_labels.first()
    label.rationale_flag = "reason_wrong"
    label.save(update_fields=["rationale_flag"])
    found = {d["comparison_id"]: d for d in disagreements(audit_rows(run, "random"))}
    # c1 agrees but is flagged; c2 humans split (tie) vs AI B; c3 humans B vs AI A; c4 tie vs tie agrees
    assert set(found) == {c1.pk, c2.pk, c3.pk}
    assert found[c1.pk]["flags"] == ["reason_wrong"]
    assert (found[c3.pk]["ai_verdict"], found[c3.pk]["human_majority"]) == ("A", "B")
    assert found[c2.pk]["human_majority"] == "tie" and found[c2.pk]["rationale"] == "because 0.2"


def test_audit_rows_read_the_prompt_subset_on_every_database():
    """The prompt's ``metadata["subset"]`` is read across the comparison → prompt relation (on PostgreSQL a
    ``KT()`` lookup keyed into the comparison id instead and every audit page failed)."""
    run = factories.make_run()
    prompt = run.prompt_set.prompts.first()
    prompt.metadata = {"subset": "maths"}
    prompt.save(update_fields=["metadata"])
    comparison = factories.make_comparison(run, prompt)
    factories.make_judgment(comparison)
    factories.make_label(comparison, "A", external_annotator="panel:0")
    assert [row.subset for row in audit_rows(run, "labelled")] == ["maths"]
