"""``python -m training``: labeling and reward-model training on files, without Django, on tiny models."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from training.__main__ import main
from training.labeling import select_principles, verdict_for

#: A constitution file as the studio exports it (constitutions.io: the same keys, source included).
CONSTITUTION = {
    "schema_version": 1,
    "name": "Tiny",
    "description": "Two principles",
    "principles": [
        {"name": "Helpful", "comparison": "Which response is more helpful?", "critique_request": "",
         "revision_request": "", "weight": 3.0, "category": "helpfulness", "enabled": True},
        {"name": "Honest", "comparison": "Which response is more honest?", "critique_request": "",
         "revision_request": "", "weight": 1.0, "category": "honesty", "enabled": True},
        {"name": "Off", "comparison": "Never asked", "critique_request": "", "revision_request": "",
         "weight": 5.0, "category": "custom", "enabled": False},
    ],
    "judge_template": None,
    "few_shot_examples": [],
    "allow_ties": False,
    "source": {"constitution": "Tiny", "version": 1, "content_hash": "x", "author": None, "note": "",
               "created_at": "2025-01-01T00:00:00+00:00"},
}
PAIRS = [
    {"prompt": "Question 1 about the sea?", "response_a": "Sure, kindly here is an answer.", "response_b": "No."},
    {"prompt": [{"role": "user", "content": "Question 2 about the hills?"}], "response_a": "No, go away.",
     "response_b": "Sure, kindly here is an answer number 2."},
    {"id": "p-3", "prompt": "Question 3?", "response_a": "Sure.", "response_b": "Go away."},
]


def _write_inputs(tmp_path):
    constitution = {k: v for k, v in CONSTITUTION.items() if k != "judge_template"}  # the default template
    (tmp_path / "constitution.yaml").write_text(yaml.safe_dump(constitution), encoding="utf-8")
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS), encoding="utf-8")
    return tmp_path / "pairs.jsonl", tmp_path / "constitution.yaml"


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_label_judges_each_pair_in_both_orders_under_a_drawn_principle(tiny_lm_dir, tmp_path, capsys):
    pairs, constitution = _write_inputs(tmp_path)
    out = tmp_path / "judgments.jsonl"
    status = main(["label", "--pairs", str(pairs), "--constitution", str(constitution), "--out", str(out),
                   "--backend", "transformers", "--model", str(tiny_lm_dir), "--seed", "3"])
    assert status == 0
    rows = _lines(out)
    assert [r["id"] for r in rows] == [0, 1, "p-3"]
    principles = [{**p, "id": i} for i, p in enumerate(CONSTITUTION["principles"])]
    for row in rows:
        assert row["principle"] == select_principles(principles, row["id"], seed=3)[0]["name"]
        assert 0.0 < row["p_a_ab"] < 1.0 and 0.0 < row["p_a_ba"] < 1.0 and row["error"] == ""
        assert row["p_a"] == pytest.approx((row["p_a_ab"] + row["p_a_ba"]) / 2)
        assert row["verdict"] == verdict_for(row["p_a"], 0.05)
    assert "3 judgments of 3 pairs written" in capsys.readouterr().out


def test_label_takes_the_judge_from_a_run_config_with_flags_overriding(tiny_lm_dir, tmp_path):
    pairs, _ = _write_inputs(tmp_path)
    constitution = tmp_path / "constitution.json"
    constitution.write_text(json.dumps({**CONSTITUTION, "judge_template": None}), encoding="utf-8")
    config = tmp_path / "run_config.json"
    config.write_text(json.dumps({"judge": {"backend": "transformers", "model": "demo://not-used",
                                            "principle_sampling": "all", "tie_margin": 0.5}}))
    out = tmp_path / "judgments.jsonl"
    status = main(["label", "--pairs", str(pairs), "--constitution", str(constitution), "--out", str(out),
                   "--config", str(config), "--model", str(tiny_lm_dir)])
    assert status == 0
    rows = _lines(out)
    assert [(r["id"], r["principle"]) for r in rows] == [
        (i, name) for i in (0, 1, "p-3") for name in ("Helpful", "Honest")
    ]
    assert {r["verdict"] for r in rows} == {"tie"}  # a margin of 0.5 makes every verdict a tie


def test_label_refuses_bad_input_naming_the_field(tmp_path, capsys):
    pairs, constitution = _write_inputs(tmp_path)
    bad = {**CONSTITUTION, "principles": [{"name": "X", "comparison": "Which?", "weight": -1}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    out = str(tmp_path / "out.jsonl")
    assert main(["label", "--pairs", str(pairs), "--constitution", str(tmp_path / "bad.json"), "--out", out]) == 2
    assert "principles[0].weight" in capsys.readouterr().err
    assert main(["label", "--pairs", str(pairs), "--constitution", str(constitution), "--out", out,
                 "--backend", "openai"]) == 2
    assert "judge.base_url" in capsys.readouterr().err


def test_reward_model_trains_on_an_exported_preference_file(tiny_lm_dir, tmp_path, capsys):
    rows = [
        {"prompt": [{"role": "user", "content": f"Question {i} about the sea?"}],
         "chosen": [{"role": "assistant", "content": f"Sure, kindly here is an answer number {i}."}],
         "rejected": [{"role": "assistant", "content": "No, go away."}],
         "prompt_id": i, "p_a": 0.8, "label_source": "ai"}
        for i in range(10)
    ]
    preferences = tmp_path / "preferences.jsonl"
    preferences.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "rm"
    status = main(["reward-model", "--preferences", str(preferences), "--out", str(out),
                   "--base-model", str(tiny_lm_dir), "--max-steps", "2", "--batch-size", "4", "--max-length", "48",
                   "--eval-ratio", "0.3"])
    assert status == 0
    assert (out / "model" / "config.json").exists()
    printed = capsys.readouterr().out
    assert f"reward model saved to {out / 'model'}" in printed
    accuracy = next(line for line in printed.splitlines() if line.startswith("eval accuracy:"))
    assert accuracy.endswith("on 3 held-out pairs") and 0.0 <= float(accuracy.split()[2]) <= 1.0


def test_python_dash_m_training_is_the_entry_point():
    done = subprocess.run([sys.executable, "-m", "training", "label", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--constitution" in done.stdout and "--base-url" in done.stdout
