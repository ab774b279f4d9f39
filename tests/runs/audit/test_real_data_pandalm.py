"""PandaLM's 999 three-vote pairs and its two shipped judges (gpt-3.5-turbo, PandaLM-7B), loaded as a run's
comparisons, judgments and external annotators' labels: the audit's inter-human alpha and the judges'
agreement with the human majority match figures computed here independently from the raw upstream files."""
from __future__ import annotations

import json
from collections import Counter
from itertools import combinations

import pytest

from runs.audit import build_report, human_majority
from runs.models import Comparison, Completion, HumanLabel, Judgment, Prompt, PromptSet
from runs.prompt_content import content_hash
from tests import factories
from training.pairing import degenerate_reason

pytestmark = pytest.mark.django_db

GPT = "gpt-3.5-turbo (PandaLM release)"
PANDALM = "PandaLM-7B (PandaLM release)"


def load_run(folder):
    """Rows from the normalized files, written in bulk: one comparison per item, one judgment per judge,
    one label per annotator (``pandalm:annotator<k>``)."""
    pairs = [json.loads(line) for line in (folder / "normalized/pandalm_testset_v1.pairs.jsonl").open()]
    verdicts = [json.loads(line) for line in (folder / "normalized/pandalm_testset_v1.judge_verdicts.jsonl").open()]
    prompt_set = PromptSet.objects.create(name="PandaLM testset-v1")
    texts = list(dict.fromkeys(p["prompt"] for p in pairs))
    Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, index=i, text=t, content_hash=content_hash(t)) for i, t in enumerate(texts)
    )
    prompts = {p.text: p for p in prompt_set.prompts.all()}
    run = factories.make_run(prompt_set=prompt_set, stages=("label",))
    completions = Completion.objects.bulk_create(
        Completion(run=run, prompt=prompts[p["prompt"]], source="reference", sample_index=2 * i + side,
                   text=p[f"response_{'ab'[side]}"], model=p["meta"][f"model_{'ab'[side]}"])
        for i, p in enumerate(pairs) for side in (0, 1)
    )
    if completions[0].pk is None:  # backends that do not return ids from bulk inserts
        completions = list(Completion.objects.filter(run=run).order_by("sample_index"))
    Comparison.objects.bulk_create(
        Comparison(run=run, prompt=prompts[p["prompt"]], completion_a=a, completion_b=b)
        for p, a, b in zip(pairs, completions[0::2], completions[1::2], strict=True)
    )
    by_item = {c.completion_a_id: c for c in Comparison.objects.filter(run=run)}
    comparison_of = {p["id"]: by_item[completions[2 * i].pk] for i, p in enumerate(pairs)}
    Judgment.objects.bulk_create(
        Judgment(comparison=comparison_of[v["id"]], judge_id=v["judge"],
                 verdict=v["verdict"] if v["verdict"] != "invalid" else "",
                 error="" if v["verdict"] != "invalid" else f"unparsable verdict {v['raw']!r}")
        for v in verdicts if v["judge"] == GPT
    )
    HumanLabel.objects.bulk_create(
        HumanLabel(comparison=comparison_of[p["id"]], external_annotator=f"pandalm:annotator{k + 1}", choice=vote)
        for p in pairs for k, vote in enumerate(p["human_votes"])
    )
    return run, comparison_of, verdicts


# --- independent figures from the raw upstream files -------------------------------------------------

VOTE = {0: "tie", 1: "A", 2: "B"}


def raw_items(folder):
    return json.loads((folder / "data/testset-v1.json").read_text())


def raw_majority(item) -> str:
    votes = Counter(VOTE[item[f"annotator{k}"]] for k in (1, 2, 3))
    (top, count), *rest = votes.most_common()
    assert not rest or rest[0][1] < count  # no three-way split in this set
    return top


def nominal_alpha(units: list[list[str]]) -> float:
    """Krippendorff's alpha (nominal) from pairwise comparisons inside each unit, written out."""
    pairable = [u for u in units if len(u) >= 2]
    n = sum(len(u) for u in pairable)
    observed = sum(sum(a != b for a, b in combinations(u, 2)) * 2 / (len(u) - 1) for u in pairable) / n
    totals = Counter(v for u in pairable for v in u)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k) / (n * (n - 1))
    return 1 - observed / expected


def test_inter_human_alpha_and_judge_agreement_with_the_majority(shared_data):
    folder = shared_data / "PandaLM"
    run, comparison_of, verdicts = load_run(folder)
    items = raw_items(folder)
    assert len(items) == 999 and HumanLabel.objects.filter(comparison__run=run).count() == 2997

    # no PandaLM pair is degenerate (54 have one empty reply: an answer against none is a real preference)
    normalized = [json.loads(line) for line in (folder / "normalized/pandalm_testset_v1.pairs.jsonl").open()]
    assert not any(degenerate_reason(p["response_a"], p["response_b"]) for p in normalized)

    # inter-human agreement: Krippendorff's alpha over the three annotators
    expected_alpha = nominal_alpha([[VOTE[it[f"annotator{k}"]] for k in (1, 2, 3)] for it in items])
    report = build_report(run, "labelled")
    alpha = report["overall"]["figures"]["alpha"]
    assert alpha["n"] == 999
    assert alpha["value"] == pytest.approx(expected_alpha, abs=1e-9)
    assert 0.8 < alpha["value"] < 0.95 and alpha["low"] < alpha["value"] < alpha["high"]
    assert alpha["high"] - alpha["low"] < 0.08

    # the human majority, aggregated in the database
    majority = human_majority(Comparison.objects.filter(run=run))
    by_idx = {int(pid.rsplit(":", 1)[1]): majority[c.pk] for pid, c in comparison_of.items()}
    assert by_idx == {it["idx"]: raw_majority(it) for it in items}
    assert Counter(by_idx.values()) == {"B": 472, "A": 422, "tie": 105}  # the upstream README's table

    # the shipped judges against the majority, from the raw judge files
    raw_judges = {
        GPT: {r["idx"]: {"1": "A", "2": "B", "Tie": "tie"}.get(r["gpt_result"], "invalid")
              for r in json.loads((folder / "data/gpt-3.5-turbo-testset-v1.json").read_text())},
        PANDALM: {r["idx"]: VOTE[r["pandalm_result"]]
                  for r in json.loads((folder / "data/pandalm-7b-testset-v1.json").read_text())},
    }
    expected_3way = {j: sum(v[it["idx"]] == raw_majority(it) for it in items) / 999 for j, v in raw_judges.items()}
    assert round(expected_3way[GPT], 4) == 0.6977 and round(expected_3way[PANDALM], 4) == 0.6677
    # gpt-3.5-turbo from the run's Judgment rows (an unparsable verdict is a failed judgment, i.e. wrong) ...
    stored = dict(Judgment.objects.filter(comparison__run=run).values_list("comparison_id", "verdict"))
    agree = sum(stored[c.pk] == majority[c.pk] for c in comparison_of.values())
    assert agree / 999 == pytest.approx(expected_3way[GPT], abs=1e-12)
    # ... and PandaLM-7B from the normalized verdict file
    shipped = {int(v["id"].rsplit(":", 1)[1]): v["verdict"] for v in verdicts if v["judge"] == PANDALM}
    agree = sum(shipped[idx] == by_idx[idx] for idx in by_idx)
    assert agree / 999 == pytest.approx(expected_3way[PANDALM], abs=1e-12)

    # the report's AI labeler alignment for the gpt-3.5 judgments stored in the run (per decisive label)
    expected_pairs = [
        (raw_judges[GPT][it["idx"]], VOTE[it[f"annotator{k}"]])
        for it in items for k in (1, 2, 3) if raw_judges[GPT][it["idx"]] != "invalid"
    ]
    decisive = [(ai, h) for ai, h in expected_pairs if h in ("A", "B")]
    alignment = report["overall"]["figures"]["alignment"]
    assert alignment["n"] == len(decisive)
    assert alignment["value"] == pytest.approx(sum(ai == h for ai, h in decisive) / len(decisive), abs=1e-12)
    assert alignment["low"] < alignment["value"] < alignment["high"]
    assert (report["overall"]["n_items"], report["overall"]["n_failed"]) == (999 - 25, 25)  # unparsable verdicts

    # the published conventions, from the raw files (PandaLM README: 69.77% 3-way, 77.40% on the 894 decisive
    # human labels with a failure as a miss, 81.51% where humans and judge are both decisive, 95.65% human
    # leave-one-out ceiling), and the same figures read off the report
    assert published_conventions(items, raw_judges[GPT]) == (0.6977, 999, 0.7740, 894, 0.8151, 849, 0.9565, 2757)
    conventions = {row["key"]: row for row in report["overall"]["conventions"]["rows"]}
    assert round(conventions["with_ties"]["judge_strict"]["value"], 4) == 0.6977
    assert conventions["with_ties"]["judge_strict"]["n"] == 999
    assert round(conventions["decisive_humans"]["judge_strict"]["value"], 4) == 0.7740
    assert conventions["decisive_humans"]["judge_strict"]["n"] == 894
    assert (round(conventions["without_ties"]["judge"]["value"], 4), conventions["without_ties"]["judge"]["n"]) == (
        0.8151, 849)
    assert report["overall"]["conventions"]["n_failed"] == 25
    ceiling = report["overall"]["conventions"]["human_ceiling"]
    assert (round(ceiling["value"], 4), ceiling["n"]) == (0.9565, 2757)


def published_conventions(items, judge: dict) -> tuple:
    """PandaLM's published conventions written out on raw items: 3-way agreement with the majority (a failed
    verdict is a miss) and its n, the same on decisive majorities, agreement where both are decisive, and
    the human leave-one-out ceiling (held-out vote vs the unique mode of the other two)."""
    majority = {it["idx"]: raw_majority(it) for it in items}
    decisive = [it for it in items if majority[it["idx"]] in ("A", "B")]
    both = [it for it in decisive if judge[it["idx"]] in ("A", "B")]

    def share(group):
        return round(sum(judge[it["idx"]] == majority[it["idx"]] for it in group) / len(group), 4)

    hits = n = 0
    for it in items:
        votes = [VOTE[it[f"annotator{k}"]] for k in (1, 2, 3)]
        for i, vote in enumerate(votes):
            others = Counter(votes[:i] + votes[i + 1:]).most_common()
            if len(others) > 1 and others[0][1] == others[1][1]:
                continue
            n, hits = n + 1, hits + (vote == others[0][0])
    return share(items), len(items), share(decisive), len(decisive), share(both), len(both), round(hits / n, 4), n
