"""A panel of judges in the label stage (Verga et al. 2024): each judge's votes under its own judge id, the
panel's verdict beside them (majority and mean, against hand-worked values), what readers of verdicts see,
resume, a judge that fails, and the evaluate stage's win rate from the panel."""
from __future__ import annotations

import pytest

from runs.models import Judgment
from runs.stages import label
from runs.stages.judging import JudgeUnavailable, aggregate_panel, judge_comparisons
from tests.runs.panel_fixtures import VERDICTS, make_panel_run, running_panel
from training.judges import judge_id_for
from training.panel import member_ids, panel_judge_id
from training.progress import NullReporter, RecordingReporter


@pytest.fixture
def panel_servers():
    with running_panel() as servers:
        yield servers


def _ids(run):
    config = run.run_config.judge
    return member_ids(config), panel_judge_id(config)


@pytest.mark.django_db
def test_each_judge_votes_under_its_own_id_and_the_majority_is_the_verdict(panel_servers):
    run, stage_run, comparisons = make_panel_run(panel_servers)
    reporter = RecordingReporter()
    label.run(stage_run, reporter)

    ids, panel_id = _ids(run)
    assert ids == [f"openai:judge@{panel_servers[n].url}" for n in ("first", "longer", "right")]
    assert panel_id.startswith("panel:majority:3:")
    for kind, comparison in comparisons.items():
        votes = {v.judge_id: v for v in Judgment.votes.filter(comparison=comparison)}
        assert [votes[i].verdict for i in ids] == list(VERDICTS[kind])
        first = votes[ids[0]]  # always the first shown: A then B, so P(A) 0.5 and never consistent
        assert (first.p_a_ab, first.p_a_ba, first.p_a, first.position_consistent) == (1.0, 0.0, 0.5, False)
        assert votes[ids[1]].position_consistent is votes[ids[2]].position_consistent is True
    verdicts = {k: Judgment.objects.get(comparison=c) for k, c in comparisons.items()}
    assert {k: j.verdict for k, j in verdicts.items()} == {"AA": "A", "AB": "tie", "BB": "B", "BA": "tie"}
    # P(A) is the panel's vote share for A, a tie vote counting half
    assert {k: j.p_a for k, j in verdicts.items()} == pytest.approx(
        {"AA": 2.5 / 3, "AB": 0.5, "BB": 0.5 / 3, "BA": 0.5})
    assert {k: j.judges_agree for k, j in verdicts.items()} == dict.fromkeys(VERDICTS, False)
    aa = verdicts["AA"]
    assert aa.judge_id == panel_id and not aa.panel_vote
    # per order: first-shown votes A in A/B and B in B/A; the others keep their side
    assert (aa.p_a_ab, aa.p_a_ba, aa.position_consistent) == (pytest.approx(1.0), pytest.approx(2 / 3), True)
    assert [v["judge"] for v in aa.panel_votes] == ids and [v["verdict"] for v in aa.panel_votes] == ["tie", "A", "A"]
    assert aa.cost == 0 and aa.attempts == 6  # three judges, two orders each
    assert f"[{ids[1]}: A]" in aa.rationale
    # readers of verdicts see one judgment per unit: votes are not verdicts
    assert Judgment.objects.filter(comparison__run=run).count() == 4
    assert Judgment.all_rows.filter(comparison__run=run).count() == 16
    assert list(run.comparisons.get(pk=comparisons["AA"].pk).judgments.values_list("judge_id", flat=True)) == [
        panel_id]
    assert "panel of 3 judges (majority): 4 verdicts (0 failed)" in "\n".join(reporter.lines)
    assert reporter.progress_calls[-1][:2] == (12, 12)


@pytest.mark.django_db
def test_the_mean_panel_averages_the_judges_probabilities(panel_servers):
    run, stage_run, comparisons = make_panel_run(panel_servers, aggregation="mean")
    label.run(stage_run, NullReporter())
    verdicts = {k: Judgment.objects.get(comparison=c) for k, c in comparisons.items()}
    assert {k: j.p_a for k, j in verdicts.items()} == pytest.approx({"AA": 5 / 6, "AB": 0.5, "BB": 1 / 6, "BA": 0.5})
    assert {k: j.verdict for k, j in verdicts.items()} == {"AA": "A", "AB": "tie", "BB": "B", "BA": "tie"}
    # per order: (1 + 1 + 1) / 3 with A first, (0 + 1 + 1) / 3 with B first
    assert (verdicts["AA"].p_a_ab, verdicts["AA"].p_a_ba) == (pytest.approx(1.0), pytest.approx(2 / 3))
    assert verdicts["AA"].judge_id.startswith("panel:mean:3:")


@pytest.mark.django_db
def test_judging_again_is_a_no_op_and_a_lost_verdict_is_aggregated_again(panel_servers):
    run, stage_run, comparisons = make_panel_run(panel_servers)
    label.run(stage_run, NullReporter())
    calls = sum(sum(s.calls.values()) for s in panel_servers.values())
    rows = list(Judgment.all_rows.filter(comparison__run=run).order_by("pk").values_list("pk", "verdict"))

    Judgment.objects.filter(comparison=comparisons["BB"]).delete()  # a verdict lost (a stage stopped mid-write)
    counts = judge_comparisons(run, run.comparisons.all(), NullReporter())
    assert (counts["done"], counts["skipped"]) == (1, 3)
    assert all(c["done"] == 0 and c["skipped"] == 4 for c in counts["votes"].values())
    assert sum(sum(s.calls.values()) for s in panel_servers.values()) == calls  # no judge asked again
    assert Judgment.objects.get(comparison=comparisons["BB"]).verdict == "B"
    assert Judgment.all_rows.filter(comparison__run=run).count() == len(rows)


@pytest.mark.django_db
def test_a_failed_vote_fails_the_verdict_until_a_resume_judges_it_again(panel_servers):
    server = panel_servers["right"]
    server.judge = lambda prompt, first, second: "garbage"  # the "right" judge answers without a verdict
    run, stage_run, comparisons = make_panel_run(panel_servers, kinds=("AA", "BB"))
    with pytest.raises(JudgeUnavailable, match="every one of the 2 judgments failed"):
        label.run(stage_run, NullReporter())
    ids, panel_id = _ids(run)
    verdict = Judgment.objects.get(comparison=comparisons["AA"])
    assert verdict.verdict == "" and verdict.p_a is None and verdict.judges_agree is None
    assert verdict.error.startswith(f"1 of 3 judges failed: {ids[2]}: ")
    assert run.failed_judgments == 2

    server.judge = lambda prompt, first, second: "A" if "right" in first else "B"
    counts = judge_comparisons(run, run.comparisons.all(), NullReporter())
    assert counts["votes"][ids[2]]["done"] == 2 and counts["votes"][ids[0]]["skipped"] == 2
    assert {k: Judgment.objects.get(comparison=c).verdict for k, c in comparisons.items()} == {"AA": "A", "BB": "B"}
    assert Judgment.objects.filter(comparison__run=run, judge_id=panel_id).count() == 2  # updated, not duplicated


@pytest.mark.django_db
def test_a_unit_one_judge_has_not_judged_gets_no_verdict(panel_servers):
    run, _stage_run, comparisons = make_panel_run(panel_servers, kinds=("AA",))
    config = run.run_config.judge
    ids = member_ids(config)
    Judgment.votes.create(comparison=comparisons["AA"], principle=None, judge_id=ids[0], verdict="A", p_a=0.9)
    counts = aggregate_panel(config, [(comparisons["AA"].pk, {"id": None})])
    assert counts == {"done": 0, "failed": 0, "skipped": 0, "missing": 1, "total": 1}
    assert not Judgment.objects.filter(comparison__run=run).exists()


@pytest.mark.django_db
def test_the_evaluate_win_rate_reads_the_panels_verdicts(panel_servers):
    from runs.stages.evaluate import build_report

    run, stage_run, comparisons = make_panel_run(panel_servers)
    label.run(stage_run, NullReporter())
    report = build_report(run, run.run_config, run.comparisons.all())
    assert report["judge"] == panel_judge_id(run.run_config.judge)
    # A wins AA, B wins BB (vote share 1/6, outside the tie margin), AB and BA are ties
    assert report["win_rate"]["wins"] == 1 and report["win_rate"]["losses"] == 1


def test_a_panel_entry_is_the_judge_with_the_entrys_fields():
    from training.config import RunConfig

    config = RunConfig.from_dict({"judge": {
        "backend": "openai", "base_url": "http://a/v1", "model": "big", "budget": 2.0, "tie_margin": 0.1,
        "panel": [{"model": "small"}, {"backend": "transformers", "model": "demo://judge", "budget": 0}],
    }}).judge
    members = config.members()
    assert [judge_id_for(m) for m in members] == ["openai:big@http://a/v1", "openai:small@http://a/v1",
                                                  "transformers:demo://judge"]
    assert [m.budget for m in members] == [2.0, 2.0, 0]
    assert {m.tie_margin for m in members} == {0.1} and all(m.panel == [] for m in members[1:])


@pytest.mark.django_db
def test_a_panel_mixes_backends(panel_servers, tiny_lm_dir):
    """An endpoint judge and a local transformers judge (a tiny GPT-2 reading the labels' log-probabilities)."""
    right = {"backend": "openai", "base_url": panel_servers["right"].url, "model": "judge", "max_retries": 0}
    local = {"backend": "transformers", "model": str(tiny_lm_dir), "max_new_tokens": 4}
    run, stage_run, comparisons = make_panel_run(panel_servers, kinds=("AA", "BB"), aggregation="mean")
    run.config = {"judge": {**right, "panel_aggregation": "mean", "panel": [local]}}
    run.save(update_fields=["config"])
    label.run(stage_run, NullReporter())
    ids, panel_id = _ids(run)
    assert ids == [f"openai:judge@{panel_servers['right'].url}", f"transformers:{tiny_lm_dir}"]
    for comparison in comparisons.values():
        votes = {v.judge_id: v for v in Judgment.votes.filter(comparison=comparison)}
        assert set(votes) == set(ids) and all(v.p_a is not None for v in votes.values())
        verdict = Judgment.objects.get(comparison=comparison)
        assert verdict.judge_id == panel_id
        assert verdict.p_a == pytest.approx((votes[ids[0]].p_a + votes[ids[1]].p_a) / 2)


@pytest.mark.django_db
def test_a_panel_runs_ai_verdicts_anchor_the_drift_guard(panel_servers):
    from runs.drift import anchor_verdicts

    run, stage_run, comparisons = make_panel_run(panel_servers)
    label.run(stage_run, NullReporter())
    # the panel's decisive verdicts, not any one judge's votes
    assert anchor_verdicts(run, "ai") == {comparisons["AA"].pk: "A", comparisons["BB"].pk: "B"}


def test_the_estimate_counts_every_judges_calls_and_cost():
    from runs.estimate import estimate
    from training.config import RunConfig

    judge = {"backend": "openai", "base_url": "http://a/v1", "model": "big", "price_per_1k_prompt_tokens": 1.0,
             "panel": [{"model": "small", "price_per_1k_prompt_tokens": 0.5}, {"model": "free",
                                                                               "price_per_1k_prompt_tokens": 0.0}]}
    one = estimate(RunConfig.from_dict({"judge": {**judge, "panel": []}}), train_prompts=10, eval_prompts=0,
                   enabled_principles=1, avg_prompt_chars=200, template_chars=800)
    three = estimate(RunConfig.from_dict({"judge": judge}), train_prompts=10, eval_prompts=0, enabled_principles=1,
                     avg_prompt_chars=200, template_chars=800)
    assert (one.judge_calls, three.judge_calls, three.judges) == (20, 60, 3)
    assert three.prompt_tokens == 3 * one.prompt_tokens
    assert three.cost == pytest.approx(one.cost * 1.5)  # prices 1 + 0.5 + 0 per 1k prompt tokens
    assert any("A panel of 3 judges" in w for w in three.warnings)
    assert any("No price is set for the judge endpoint of openai:free@http://a/v1" in w for w in three.warnings)
