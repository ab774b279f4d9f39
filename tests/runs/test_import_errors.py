"""Bad input: one clear error naming file, line/row and field, and nothing saved; or, with "skip bad
rows", a report listing every skipped row and why. Plus a fuzz test of broken inputs (hypothesis)."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.importing import BadInput, ImportOptions, import_prompt_set, open_source
from runs.models import Prompt, PromptSet, ReferencePair

pytestmark = pytest.mark.django_db


def nothing_saved():
    return PromptSet.objects.count() == 0 and Prompt.objects.count() == 0 and ReferencePair.objects.count() == 0


def run_import(path, **options):
    return import_prompt_set("set", open_source(path), ImportOptions(**options))


def error_of(path, **options) -> BadInput:
    with pytest.raises(BadInput) as info:
        run_import(path, **options)
    assert nothing_saved()
    return info.value


def test_empty_file(tmp_path):
    (tmp_path / "e.jsonl").write_bytes(b"")
    assert str(error_of(tmp_path / "e.jsonl")) == "e.jsonl: the file is empty"


def test_blank_lines_only(tmp_path):
    (tmp_path / "b.jsonl").write_text("\n\n  \n")
    assert "b.jsonl" in str(error_of(tmp_path / "b.jsonl"))


def test_csv_with_nothing_but_a_header(tmp_path):
    (tmp_path / "h.csv").write_text("prompt\n")
    assert str(error_of(tmp_path / "h.csv")) == "h.csv: has no rows"


def test_wrong_extension(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    error = error_of(tmp_path / "notes.txt")
    assert str(error).startswith("notes.txt: unsupported file type .txt; supported: .jsonl")


def test_undecodable_bytes_name_the_line(tmp_path):
    (tmp_path / "u.jsonl").write_bytes(b'{"prompt": "fine"}\n{"prompt": "caf\xe9"}\n')
    error = error_of(tmp_path / "u.jsonl")
    assert (error.file, error.row, error.unit) == ("u.jsonl", 2, "line")
    assert "not valid UTF-8" in error.message


def test_undecodable_csv_names_the_line(tmp_path):
    (tmp_path / "u.csv").write_bytes(b"prompt\nfine\n\xff\xfebad\n")
    error = error_of(tmp_path / "u.csv")
    assert (error.row, error.unit) == (3, "line") and "not valid UTF-8" in error.message


def test_malformed_json_line_names_the_line(tmp_path):
    lines = [json.dumps({"prompt": f"p{i}"}) for i in range(5)]
    lines[3] = '{"prompt": "broken'
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    error = error_of(tmp_path / "m.jsonl", batch_size=2)
    assert str(error).startswith("m.jsonl, line 4: not valid JSON")


def test_missing_prompt_column_lists_the_columns(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"question": "a", "id": 1}\n')
    error = error_of(tmp_path / "c.jsonl")
    assert str(error) == "c.jsonl, field 'prompt': no such column; the columns are: question, id"


def test_empty_prompt_names_line_and_field_after_blank_lines(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"prompt": "a"}\n\n{"prompt": "b"}\n{"prompt": "   "}\n')
    assert str(error_of(tmp_path / "e.jsonl")) == "e.jsonl, line 4, field 'prompt': is empty"


def test_empty_csv_cell(tmp_path):
    (tmp_path / "e.csv").write_text("prompt,id\nhello,1\n,2\n")
    assert str(error_of(tmp_path / "e.csv")) == "e.csv, row 2, field 'prompt': is missing (null)"


def test_over_long_prompt(tmp_path):
    (tmp_path / "l.jsonl").write_text(json.dumps({"prompt": "x" * 50}) + "\n")
    error = error_of(tmp_path / "l.jsonl", max_prompt_chars=10)
    assert str(error) == "l.jsonl, line 1, field 'prompt': the prompt has 50 characters; the limit is 10"


def test_unknown_role(tmp_path):
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"},
                        {"role": "user", "content": "?"}]}
    first = {"messages": [{"role": "user", "content": "ok"}]}
    (tmp_path / "r.jsonl").write_text(json.dumps(first) + "\n" + json.dumps(row) + "\n")
    error = error_of(tmp_path / "r.jsonl", layout="messages")
    assert str(error) == (
        "r.jsonl, line 2, field 'messages[1].role': unknown role 'robot'; expected system, user or assistant"
    )


def test_an_error_in_a_later_batch_rolls_back_earlier_batches(tmp_path):
    rows = [{"prompt": f"p{i}"} for i in range(25)] + [{"prompt": ""}]
    (tmp_path / "late.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    error = error_of(tmp_path / "late.jsonl", batch_size=5)
    assert error.row == 26


def test_skip_bad_rows_reports_every_skipped_row(tmp_path):
    lines = [
        json.dumps({"prompt": "good one"}),
        json.dumps({"prompt": ""}),
        '{"prompt": "broken',
        json.dumps({"prompt": "x" * 30}),
        "[1, 2]",
        json.dumps({"prompt": "good two"}),
    ]
    (tmp_path / "s.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b'{"prompt": "\xff"}\n')
    ps = run_import(tmp_path / "s.jsonl", skip_bad_rows=True, max_prompt_chars=20)
    assert list(ps.prompts.values_list("text", flat=True)) == ["good one", "good two"]
    report = ps.import_report
    assert report["skipped_count"] == 5
    assert [(s["row"], s["field"]) for s in report["skipped"]] == [
        (2, "prompt"), (3, ""), (4, "prompt"), (5, ""), (7, "")
    ]
    reasons = [s["error"] for s in report["skipped"]]
    assert reasons[0] == "is empty" and reasons[1].startswith("not valid JSON")
    assert "limit is 20" in reasons[2] and "got a list" in reasons[3] and "UTF-8" in reasons[4]


def test_skip_bad_rows_in_csv_lists_rows(tmp_path):
    (tmp_path / "s.csv").write_text("prompt\nok\n\nfine\n\"\"\n")
    ps = run_import(tmp_path / "s.csv", skip_bad_rows=True)
    assert ps.prompts.count() == 2
    assert [s["row"] for s in ps.import_report["skipped"]] == [3]


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": ""}\n')
    error = error_of(tmp_path / "bad.jsonl", skip_bad_rows=True)
    assert "no usable prompts: 1 bad rows" in str(error)


# --- fuzz ------------------------------------------------------------------------------------------

_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.just(""), st.just("   "),
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "bot", ""]), "content": st.text(max_size=3)}),
             max_size=2),
)
_line = st.one_of(
    st.dictionaries(st.sampled_from(["prompt", "messages", "other"]), _value, max_size=3).map(json.dumps),
    st.text(max_size=12),  # often not JSON at all
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(_line, max_size=6),
    raw_tail=st.binary(max_size=6),
    layout=st.sampled_from(["text", "messages"]),
    skip=st.booleans(),
)
def test_fuzzed_inputs_either_import_cleanly_or_fail_with_a_located_error_and_save_nothing(
    tmp_path_factory, lines, raw_tail, layout, skip
):
    path = tmp_path_factory.mktemp("fuzz") / "f.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw_tail)
    try:
        ps = import_prompt_set("fuzz", open_source(path), ImportOptions(layout=layout, skip_bad_rows=skip))
    except BadInput as exc:
        assert nothing_saved()
        assert str(exc).startswith("f.jsonl")
        assert exc.message
        return
    try:
        report = ps.import_report
        assert ps.status == PromptSet.Status.READY
        assert report["prompts"] == ps.prompts.count() >= 1
        for prompt in ps.prompts.all():
            assert prompt.text.strip()
        if not skip:
            assert report["skipped_count"] == 0
        for item in report["skipped"]:
            assert item["row"] >= 1 and item["error"]
    finally:
        PromptSet.objects.all().delete()
