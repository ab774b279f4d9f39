"""Importing each file format through the `datasets` readers: JSONL (plain and gzip), JSON arrays, CSV,
Parquet, save_to_disk folders (and zips, DatasetDicts); de-duplication, split, limit and shuffle."""
from __future__ import annotations

import gzip
import json
import shutil
import time

import datasets
import pytest

from runs.importing import BadInput, ImportOptions, import_prompt_set, open_source, preview
from runs.models import Prompt, PromptSet
from runs.prompt_content import split_for

pytestmark = pytest.mark.django_db

PROMPTS = [f"Question number {i}: what is {i} squared?" for i in range(30)]


def write_jsonl(path, rows, gz=False):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def texts(prompt_set):
    return list(prompt_set.prompts.order_by("index").values_list("text", flat=True))


@pytest.mark.parametrize("gz", [False, True])
def test_jsonl_imports_every_row_in_order_with_a_deterministic_split(tmp_path, gz):
    path = write_jsonl(tmp_path / ("p.jsonl.gz" if gz else "p.jsonl"), [{"prompt": p} for p in PROMPTS], gz)
    ps = import_prompt_set("P", open_source(path), ImportOptions(seed=3, eval_ratio=0.3, batch_size=7))
    assert ps.status == PromptSet.Status.READY
    assert texts(ps) == PROMPTS
    for prompt in ps.prompts.all():
        assert prompt.split == split_for(prompt.content_hash, seed=3, eval_ratio=0.3)
    report = ps.import_report
    assert report["rows_read"] == 30 and report["prompts"] == 30
    assert report["splits"]["eval"] == ps.prompts.filter(split="eval").count() > 0


def test_duplicates_after_normalisation_are_dropped_and_counted(tmp_path):
    rows = [{"prompt": "Hello there"}, {"prompt": "  HELLO   there "}, {"prompt": "Other"}, {"prompt": "other"}]
    ps = import_prompt_set("D", open_source(write_jsonl(tmp_path / "d.jsonl", rows)), ImportOptions())
    assert texts(ps) == ["Hello there", "Other"]
    assert ps.import_report["duplicates"] == 2


def test_limit_and_seeded_shuffle(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": p} for p in PROMPTS])
    first = import_prompt_set("L1", open_source(path), ImportOptions(limit=5, shuffle=True, seed=1, batch_size=4))
    again = import_prompt_set("L2", open_source(path), ImportOptions(limit=5, shuffle=True, seed=1, batch_size=4))
    other = import_prompt_set("L3", open_source(path), ImportOptions(limit=5, shuffle=True, seed=2, batch_size=4))
    assert len(texts(first)) == 5 and texts(first) == texts(again)
    assert texts(first) != texts(other)
    assert texts(first) != PROMPTS[:5]
    plain = import_prompt_set("L4", open_source(path), ImportOptions(limit=5))
    assert texts(plain) == PROMPTS[:5]


def test_csv_with_multiline_cells_and_metadata(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('instruction,input,topic\n"Write a poem","about\nthe sea",art\nAdd 2+2,,maths\n', encoding="utf-8")
    options = ImportOptions(prompt_column="instruction", input_column="input", metadata_columns=["topic"])
    ps = import_prompt_set("C", open_source(path), options)
    assert texts(ps) == ["Write a poem\n\nabout\nthe sea", "Add 2+2"]
    assert ps.prompts.get(index=1).metadata == {"topic": "maths", "source_row": 2}


def test_parquet_and_save_to_disk_folders_and_zips(tmp_path):
    ds = datasets.Dataset.from_dict({"messages": [[{"role": "user", "content": p}] for p in PROMPTS[:4]]})
    ds.to_parquet(str(tmp_path / "m.parquet"))
    ps = import_prompt_set("Pq", open_source(tmp_path / "m.parquet"), ImportOptions(layout="messages"))
    assert ps.prompts.get(index=0).messages == [{"role": "user", "content": PROMPTS[0]}]
    ds.save_to_disk(str(tmp_path / "saved"))
    ps = import_prompt_set("Disk", open_source(tmp_path / "saved"), ImportOptions(layout="messages"))
    assert ps.prompts.count() == 4
    shutil.make_archive(str(tmp_path / "saved"), "zip", tmp_path, "saved")
    ps = import_prompt_set("Zip", open_source(tmp_path / "saved.zip"), ImportOptions(layout="messages"))
    assert ps.prompts.count() == 4


def test_dataset_dict_folder_needs_a_split_when_it_has_no_train(tmp_path):
    dd = datasets.DatasetDict({
        "test": datasets.Dataset.from_dict({"prompt": ["a", "b"]}),
        "validation": datasets.Dataset.from_dict({"prompt": ["c"]}),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(BadInput) as info:
        import_prompt_set("DD", open_source(tmp_path / "dd"), ImportOptions())
    assert info.value.field == "dataset_split" and "test, validation" in str(info.value)
    ps = import_prompt_set("DD", open_source(tmp_path / "dd"), ImportOptions(dataset_split="validation"))
    assert texts(ps) == ["c"]


def test_json_array_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"prompt": "one"}, {"prompt": "two"}]))
    source = open_source(path)
    assert source.unit == "item"
    assert texts(import_prompt_set("A", source, ImportOptions())) == ["one", "two"]


def test_preview_suggests_a_mapping_and_parses_the_first_rows(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"id": i, "question": p} for i, p in enumerate(PROMPTS)])
    result = preview(open_source(path), n=3)
    assert result.columns == ["id", "question"]
    assert result.suggested["prompt_column"] == "question"
    assert [p["text"] for p in result.parsed] == PROMPTS[:3]
    assert PromptSet.objects.count() == 0


def test_hub_dataset_fails_fast_and_clearly_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(BadInput) as info:
        preview(open_source("Anthropic/hh-rlhf", hub=True))
    assert time.monotonic() - started < 5
    assert info.value.file == "Anthropic/hh-rlhf" and "offline" in str(info.value)
    assert "save_to_disk" in str(info.value)


def test_bad_hub_id_is_rejected_before_any_network():
    with pytest.raises(BadInput) as info:
        open_source("not a dataset id!", hub=True)
    assert info.value.field == "hub_id"


def test_rows_are_stored_with_their_source_row_number(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": p} for p in PROMPTS[:3]])
    ps = import_prompt_set("R", open_source(path), ImportOptions())
    assert list(Prompt.objects.filter(prompt_set=ps).values_list("metadata__source_row", flat=True)) == [1, 2, 3]
