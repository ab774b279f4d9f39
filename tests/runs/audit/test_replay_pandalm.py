"""Known answers through the whole product: PandaLM's pairs imported as reference pairs (integer votes mapped
explicitly), judged by the real ``openai`` backend against a local server that replays gpt-3.5-turbo's
recorded verdicts (ties answered "Preferred: tie", unparseable ones as garbage), and the audit's figures in each
published convention compared with the same figures computed independently from what the server answered."""
from __future__ import annotations

import json

import pytest

from benchmarks.fake_openai_server import FakeChatServer
from runs.audit import build_report
from runs.importing import ImportOptions, import_prompt_set, open_source
from runs.models import Judgment, StageRun
from runs.stages import generate, label
from tests import factories
from training.judge_conventions import PairUnit, convention_table
from training.progress import NullReporter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SWAP = {"A": "B", "B": "A", "tie": "tie", "garbage": "garbage"}


def recorded(shared_data):
    folder = shared_data / "PandaLM" / "normalized"
    pairs = [json.loads(line) for line in (folder / "pandalm_testset_v1.pairs.jsonl").open()]
    verdicts = {}
    for line in (folder / "pandalm_testset_v1.judge_verdicts.jsonl").open():
        item = json.loads(line)
        if item["judge"].startswith("gpt-3.5"):
            verdicts[item["id"]] = "garbage" if item["verdict"] == "invalid" else item["verdict"]
    return pairs, verdicts


def test_replayed_gpt35_verdicts_give_the_independently_computed_figures(shared_data, tmp_path):
    pairs, verdicts = recorded(shared_data)
    # the server's replay: the first recorded verdict for each distinct (prompt, response A, response B)
    replay: dict[tuple[str, str], str] = {}
    for pair in pairs:
        replay.setdefault((pair["response_a"].strip(), pair["response_b"].strip()), verdicts[pair["id"]])

    def answer(first, second):
        """The replayed verdict with ``first`` shown as A: the item in that order, else its mirror swapped."""
        if (first, second) in replay:
            return replay[(first, second)]
        return SWAP[replay[(second, first)]]

    def judge(prompt, shown_first, shown_second):
        for a, b in _candidates(replay, shown_first, shown_second):
            for first, second in ((a, b), (b, a)):
                if f"Response A:\n{first}\n\nResponse B:\n{second}\n\n" in prompt:
                    return answer(first, second)
        raise AssertionError("the replay does not know this pair")

    options = ImportOptions(layout="pairwise", prompt_column="prompt", response_a_column="response_a",
                            response_b_column="response_b", vote_columns=["human_votes"], dedupe="none",
                            subset_column="subset", pair_source="pandalm")
    prompt_set = import_prompt_set(
        "PandaLM replay", open_source(shared_data / "PandaLM/normalized/pandalm_testset_v1.pairs.jsonl"), options)
    assert prompt_set.import_report["reference_pairs"] == 999
    version = factories.make_version(principles=[factories.principle("Overall")], allow_ties=True)
    with FakeChatServer(judge=judge) as server:
        run = factories.make_run(
            prompt_set=prompt_set, constitution_version=version, stages=("generate", "label"),
            config={"generation": {"source": "reference_pairs"},
                    "judge": {"backend": "openai", "base_url": server.url, "model": "gpt-3.5-turbo (replay)",
                              "concurrency": 8, "max_retries": 0, "max_reasks": 0, "max_failed_share": 0.5}},
        )
        generate.run(StageRun.objects.get(run=run, stage="generate"), NullReporter())
        label.run(StageRun.objects.get(run=run, stage="label"), NullReporter())
    assert Judgment.objects.filter(comparison__run=run).count() == 999

    # the same figures, computed here from the replay and the human votes
    # (an item and its mirror, B-vs-A, are the same request in both orders: the server cannot tell them apart)
    units = []
    for pair in pairs:
        a, b = pair["response_a"].strip(), pair["response_b"].strip()
        ab, ba = answer(a, b), SWAP[answer(b, a)]
        units.append(PairUnit("" if ab == "garbage" else ab, "" if ba == "garbage" else ba,
                              tuple(pair["human_votes"]), subset=pair["subset"]))
    expected = {row["key"]: row for row in convention_table(units)["rows"]}
    report = build_report(run, "labelled")
    got = {row["key"]: row for row in report["overall"]["conventions"]["rows"]}
    for key in ("per_order", "with_ties", "decisive_humans", "without_ties", "leave_one_out", "position_consistency"):
        for column in ("judge", "judge_strict"):
            assert got[key][column]["n"] == expected[key][column]["n"], (key, column)
            assert got[key][column]["value"] == pytest.approx(expected[key][column]["value"], abs=1e-12), (key, column)
    assert report["overall"]["conventions"]["n_failed"] == sum(u.failed for u in units) == 34
    # near the published figures: upstream, 4 repeated items carry other verdicts, and an item and its mirror
    # (the same two replies in the other order) were judged separately in one order each
    # (one-order verdicts: exactly 69.77%, 77.40%, 81.51%, see test_real_data_pandalm.py)
    assert got["with_ties"]["judge_strict"]["value"] == pytest.approx(0.6977, abs=0.015)
    assert got["decisive_humans"]["judge_strict"]["value"] == pytest.approx(0.7740, abs=0.015)
    assert got["without_ties"]["judge"]["value"] == pytest.approx(0.8151, abs=0.015)
    assert set(report["subsets"]) == {pair["subset"] for pair in pairs}


def _candidates(replay, shown_first, shown_second):
    """Replay keys whose responses begin like the two shown (the server's regex stops at a blank line)."""
    for a, b in replay:
        if (a.startswith(shown_first) and b.startswith(shown_second)) or (
                b.startswith(shown_first) and a.startswith(shown_second)):
            yield a, b
