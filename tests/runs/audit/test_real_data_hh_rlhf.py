"""HH-RLHF harmless-base reference pairs, imported by the prompt importer and materialised as a run's
comparisons with the crowdworker's choice as a human label, judged by the ``reward_model`` backend through
the label stage: the audit's AI labeler alignment comes with its interval and the right n."""
from __future__ import annotations

import pytest

from runs.audit import build_report, human_majority
from runs.importing import ImportOptions, import_prompt_set, open_source
from runs.models import Comparison, Judgment, ReferencePair
from runs.reference_pairs import materialise_reference_pairs
from runs.stages.judging import judge_comparisons
from tests import factories
from training.progress import NullReporter

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

N_PAIRS = 80


def test_reward_model_judge_on_hh_rlhf_reference_pairs_gives_alignment_with_interval(shared_data):
    source = open_source(shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz")
    prompt_set = import_prompt_set(
        "HH-RLHF harmless-base test (sample)", source,
        ImportOptions(layout="hh_rlhf", limit=N_PAIRS, pair_source="hh-rlhf", eval_ratio=0.0),
    )
    run = factories.make_run(
        prompt_set=prompt_set, stages=("label",),
        config={"judge": {"backend": "reward_model", "model": "minilm", "tie_margin": 0.0}},
    )
    stored = materialise_reference_pairs(run)
    assert (stored.pairs, stored.comparisons, stored.human_labels) == (N_PAIRS, N_PAIRS, N_PAIRS)

    counts = judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())
    assert counts["failed"] == 0
    judgments = Judgment.objects.filter(comparison__run=run)
    assert judgments.count() == N_PAIRS and judgments.filter(judge_id="reward_model:minilm").count() == N_PAIRS

    report = build_report(run, "labelled")
    alignment = report["overall"]["figures"]["alignment"]
    assert alignment["n"] == N_PAIRS  # one crowdworker choice per pair, always A or B
    assert 0.0 <= alignment["low"] <= alignment["value"] <= alignment["high"] <= 1.0
    assert alignment["method"] == "wilson" and alignment["high"] - alignment["low"] < 0.25

    # the same figure, computed here from the imported pairs and the stored verdicts
    truth = dict(ReferencePair.objects.filter(prompt__prompt_set=prompt_set).values_list("prompt_id", "human_choice"))
    verdicts = judgments.values_list("comparison__prompt_id", "verdict")
    assert alignment["value"] == pytest.approx(sum(truth[p] == v for p, v in verdicts) / N_PAIRS)
    assert set(human_majority(Comparison.objects.filter(run=run)).values()) <= {"A", "B"}
    length = report["overall"]["figures"]["human_prefers_longer"]
    assert length["n"] >= N_PAIRS - 5 and 0.25 < length["value"] < 0.65  # harmless answers are often the shorter ones
