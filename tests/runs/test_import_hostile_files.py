"""Hostile and wrong files: deep nesting, misleading parser messages, data that would import as the wrong
thing (another delimiter, duplicate headers, no text column, booleans as replies, unread columns), and zip
bombs. Every refusal names the file, the line (or item) and the field; nothing is guessed silently."""
from __future__ import annotations

import json
import zipfile

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runs.importing import BadInput, ImportOptions, archives, import_prompt_set, open_source, preview
from runs.models import Prompt, PromptSet, ReferencePair

pytestmark = pytest.mark.django_db


def refused(path, **options) -> BadInput:
    with pytest.raises(BadInput) as info:
        import_prompt_set("set", open_source(path), ImportOptions(**options))
    assert PromptSet.objects.count() == 0 and Prompt.objects.count() == 0
    return info.value


# --- deep nesting and misleading parser messages ------------------------------------------------------


def test_deeply_nested_json_line_is_refused_with_its_line_not_a_crash(tmp_path):
    deep = "[" * 50_000 + "]" * 50_000
    path = tmp_path / "deep.jsonl"
    path.write_text('{"prompt": "fine"}\n' + f'{{"prompt": "x", "meta": {deep}}}\n')
    error = refused(path)
    assert (error.file, error.row, error.unit, error.field) == ("deep.jsonl", 2, "line", "meta")
    assert "nested deeper than" in error.message


def test_nesting_just_over_the_limit_names_the_depth(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "m": %s}\n' % ("[" * 150 + "]" * 150))
    error = refused(path)
    assert (error.row, error.field) == (1, "m") and "151 levels deep; the limit is 100" in error.message


def test_deeply_nested_json_array_names_the_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('[{"prompt": "ok"},\n {"prompt": "x", "m": %s}]' % ("[" * 50_000 + "]" * 50_000))
    error = refused(path)
    assert (error.row, error.unit, error.field) == (2, "line", "m") and "nested deeper" in error.message


def test_an_array_item_nested_too_deep_names_the_item_and_field(tmp_path):
    path = tmp_path / "items.json"
    path.write_text('[{"prompt": "ok"}, {"prompt": "x", "tags": %s}]' % ("[" * 120 + "]" * 120))
    error = refused(path)
    assert (error.row, error.unit, error.field) == (2, "item", "tags") and "121 levels deep" in error.message


def test_deep_messages_in_a_csv_cell_name_the_row_and_field(tmp_path):
    path = tmp_path / "m.csv"
    cell = "[" * 5000 + "]" * 5000
    path.write_text(f'messages\n"{cell}"\n')
    error = refused(path, layout="messages")
    assert (error.row, error.field) == (1, "messages") and "nested deeper" in error.message


def test_huge_integers_in_a_json_array_import_instead_of_value_is_too_big(tmp_path):
    path = tmp_path / "big.json"
    path.write_text('[{"prompt": "a", "n": 1}, {"prompt": "b", "n": 123456789012345678901234567890}]')
    ps = import_prompt_set("big", open_source(path), ImportOptions(metadata_columns=["n"]))
    assert ps.prompts.get(index=1).metadata["n"] == 123456789012345678901234567890


def test_trailing_data_after_a_json_array_names_the_line(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('[{"prompt": "a"}]\n[{"prompt": "b"}]\n')
    error = refused(path)
    assert (error.row, error.unit) == (2, "line") and "Extra data" in error.message


def test_json_array_of_non_objects_names_the_item(tmp_path):
    path = tmp_path / "n.json"
    path.write_text("[1, 2]")
    error = refused(path)
    assert (error.row, error.unit) == (1, "item") and error.message == "expected a JSON object, got a number (1)"


# --- wrong data that used to import without a word -----------------------------------------------------


@pytest.mark.parametrize("separator,name", [(";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")])
def test_csv_separated_by_something_else_is_refused(tmp_path, separator, name):
    path = tmp_path / "s.csv"
    path.write_text(f"prompt{separator}id\nhello{separator}1\nworld{separator}2\n")
    error = refused(path)
    assert (error.file, error.row, error.unit) == ("s.csv", 1, "line")
    assert f"holding {name}" in error.message


def test_csv_with_duplicate_or_empty_header_names_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text("prompt,prompt\nhello,a\n")
    assert "names column 'prompt' twice" in refused(tmp_path / "d.csv").message
    (tmp_path / "e.csv").write_text("prompt,\nhello,a\n")
    assert "column 2 of the header has no name" in refused(tmp_path / "e.csv").message


def test_csv_cells_are_text_not_guessed_numbers(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("prompt,response_a,response_b,label\nWhat is 2+2?,4,5,A\n")
    ps = import_prompt_set("n", open_source(path), ImportOptions(layout="pairwise", label_column="label"))
    pair = ps.prompts.get().reference_pairs.get()
    assert (pair.response_a, pair.response_b) == ("4", "5")
    assert ps.import_report["warning_count"] == 0


def test_parquet_without_a_text_column_is_not_guessed(tmp_path):
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3]}), path)
    with pytest.raises(BadInput) as info:
        preview(open_source(path))
    assert "no column holds text" in info.value.message and "id (number)" in info.value.message
    error = refused(path, prompt_column="id")
    assert (error.row, error.field) == (1, "id") and "is a number (1), not text" in error.message


def test_json_booleans_as_responses_are_refused(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"prompt": "q", "response_a": True, "response_b": False, "label": "A"}) + "\n")
    error = refused(path, layout="pairwise", label_column="label")
    assert (error.row, error.field) == (1, "response_a")
    assert error.message == (
        "is a boolean (true), not text (to store such values as text, tick 'Numbers and true/false as text')"
    )
    # asked and answered: stored as text, with a note naming the field
    ps = import_prompt_set("asked", open_source(path), ImportOptions(layout="pairwise", label_column="label",
                                                                   scalars_as_text=True))
    pair = ps.prompts.get().reference_pairs.get()
    assert (pair.response_a, pair.response_b) == ("true", "false")
    assert "field 'response_a': the bool true was stored as the text 'true'" in [
        w["warning"] for w in ps.import_report["warnings"]]


def test_columns_the_layout_does_not_read_are_named_in_preview_and_report(tmp_path):
    path = tmp_path / "extra.jsonl"
    rows = [{"prompt": f"Question {i}?", "answer": "good", "score": 3} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shown = preview(open_source(path))
    assert shown.suggested["layout"] == "text"
    assert shown.notes == [
        "not imported with the text layout: column(s) 'answer', 'score' (choose another layout, map them, "
        "or keep them as metadata columns)"
    ]
    ps = import_prompt_set("extra", open_source(path), ImportOptions())
    assert any("'answer', 'score'" in w["warning"] for w in ps.import_report["warnings"])


def test_trl_prompt_chosen_rejected_import_as_pairs_with_the_human_choice(tmp_path):
    """chosen/rejected that are plain replies (not HH-RLHF transcripts) next to a prompt column: TRL's
    standard preference format, imported as reference pairs, not as prompts that drop the replies."""
    path = tmp_path / "trl.jsonl"
    rows = [{"prompt": f"Question {i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shown = preview(open_source(path))
    assert shown.suggested == {"layout": "pairwise", "prompt_column": "prompt", "response_a_column": "chosen",
                               "response_b_column": "rejected", "a_is_chosen": True, "dedupe": "pair"}
    assert shown.notes == []
    ps = import_prompt_set("trl", open_source(path), ImportOptions(**shown.suggested))
    pairs = list(ReferencePair.objects.filter(prompt__prompt_set=ps))
    assert len(pairs) == 40
    assert all(getattr(p, "response_" + p.human_choice.lower()).startswith("good") for p in pairs)
    assert 10 < sum(p.human_choice == "A" for p in pairs) < 30  # chosen shown first for about half


def test_chosen_rejected_that_are_not_transcripts_are_refused_in_the_hh_layout(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"chosen": "Human: hi Assistant: hello", "rejected": "Human: hi Assistant: go"}) + "\n")
    error = refused(path, layout="hh_rlhf")
    assert (error.row, error.field) == (1, "chosen")


# --- zip bombs ------------------------------------------------------------------------------------------


def _zipped_folder(tmp_path, extra: dict[str, bytes] | None = None):
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"prompt": ["a?", "b?"]}).save_to_disk(str(folder))
    archive = tmp_path / "saved.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for file in folder.rglob("*"):
            out.write(file, file.relative_to(tmp_path))
        for name, content in (extra or {}).items():
            out.writestr(name, content)
    return archive


def test_zip_bomb_is_refused_and_nothing_is_left_on_disk(tmp_path):
    archive = _zipped_folder(tmp_path, {"saved/padding.bin": b"\0" * 50_000_000})
    assert archive.stat().st_size < 200_000
    with pytest.raises(BadInput) as info:
        open_source(archive)
    assert info.value.file == "saved.zip" and "zip bomb" in info.value.message
    assert not (tmp_path / "saved.zip.contents").exists()


def test_zip_with_too_many_members_is_refused_and_cleaned(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "ZIP_MAX_MEMBERS", 3)
    archive = _zipped_folder(tmp_path, {f"saved/extra{i}.txt": b"x" for i in range(5)})
    with pytest.raises(BadInput) as info:
        open_source(archive)
    assert "the limit is 3" in info.value.message
    assert not (tmp_path / "saved.zip.contents").exists()


def test_a_normal_zip_imports_and_its_extracted_folder_is_removed_after(tmp_path):
    archive = _zipped_folder(tmp_path)
    source = open_source(archive)
    ps = import_prompt_set("zipped", source, ImportOptions())
    assert ps.prompts.count() == 2
    source.close()
    assert not (tmp_path / "saved.zip.contents").exists()
