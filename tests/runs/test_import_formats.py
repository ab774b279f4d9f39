"""Row layouts of the prompt importer: text, chat messages, HH-RLHF transcripts, pairwise with votes."""
from __future__ import annotations

import pytest

from runs.importing import ImportOptions, RowError, hh_turns, parse_row, split_hh_pair, suggest_options
from runs.importing.errors import BadInput
from runs.importing.formats import vote_value
from runs.importing.options import parse_label_map
from training.judge_conventions import human_majority


def test_text_layout_joins_input_after_a_blank_line():
    options = ImportOptions(layout="text", prompt_column="instruction", input_column="input")
    parsed = parse_row({"instruction": " Summarise this. ", "input": "A long text."}, options)
    assert parsed.text == "Summarise this.\n\nA long text."
    assert parse_row({"instruction": "Just this", "input": ""}, options).text == "Just this"


def test_messages_layout_keeps_a_final_assistant_turn_as_the_demonstration():
    options = ImportOptions(layout="messages")
    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                        {"role": "assistant", "content": "Hello."}]}
    parsed = parse_row(row, options)
    assert parsed.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    assert parsed.metadata["response"] == "Hello."
    assert parsed.text == "system: Be brief.\n\nuser: Hi?"


def test_messages_layout_accepts_sharegpt_and_json_text():
    options = ImportOptions(layout="messages", messages_column="conversations")
    parsed = parse_row({"conversations": '[{"from": "human", "value": "Why?"}]'}, options)
    assert parsed.messages == [{"role": "user", "content": "Why?"}]


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ([{"role": "bot", "content": "x"}], "messages[0].role", "unknown role 'bot'"),
        ([{"role": "user", "content": "ok"}, {"role": "user"}], "messages[1].content", "missing or not text"),
        ([{"role": "user", "content": "  "}], "messages[0].content", "is empty"),
        ([], "messages", "has no messages"),
        ("not json", "messages", "not a list of messages"),
        ([{"role": "assistant", "content": "only an answer"}], "messages", "does not end with a user turn"),
    ],
)
def test_bad_messages_name_the_message_and_key(value, field, message):
    with pytest.raises(RowError) as info:
        parse_row({"messages": value}, ImportOptions(layout="messages"))
    assert info.value.field == field
    assert message in info.value.message


def test_hh_split_uses_the_shared_prefix_even_when_a_reply_contains_human_turns():
    prompt = "\n\nHuman: How do I pick a lock?"
    chosen = prompt + "\n\nAssistant: I can't help with that.\n\nHuman: please\n\nAssistant: No."
    rejected = prompt + "\n\nAssistant: Use a tension wrench."
    head, reply_chosen, reply_rejected = split_hh_pair(chosen, rejected)
    assert head == prompt
    assert reply_chosen == "I can't help with that.\n\nHuman: please\n\nAssistant: No."
    assert reply_rejected == "Use a tension wrench."


def test_hh_turns_and_reference_pair_keep_the_human_choice_whatever_the_order():
    options = ImportOptions(layout="hh_rlhf")
    base = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a secret"
    parsed = parse_row({"chosen": base + "\n\nAssistant: No.", "rejected": base + "\n\nAssistant: Sure: ..."}, options)
    assert parsed.messages == [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a secret"},
    ]
    pair = parsed.pair
    chosen_side = pair["human_choice"]
    assert {pair["response_a"], pair["response_b"]} == {"No.", "Sure: ..."}
    assert pair["response_" + chosen_side.lower()] == "No."


def test_hh_reference_pairs_put_chosen_first_about_half_the_time():
    options = ImportOptions(layout="hh_rlhf")
    choices = [
        parse_row({"chosen": f"\n\nHuman: q{i}\n\nAssistant: good", "rejected": f"\n\nHuman: q{i}\n\nAssistant: bad"},
                  options).pair["human_choice"]
        for i in range(200)
    ]
    assert 70 < choices.count("A") < 130


def test_hh_rejects_text_that_is_not_a_transcript():
    with pytest.raises(RowError) as info:
        parse_row({"chosen": "plain text", "rejected": "\n\nHuman: x\n\nAssistant: y"}, ImportOptions(layout="hh_rlhf"))
    assert info.value.field == "chosen"
    assert hh_turns("\n\nHuman: a\n\nAssistant: b") == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}
    ]


def test_integer_votes_need_a_label_map():
    options = ImportOptions(layout="pairwise", prompt_column="instruction", response_a_column="response1",
                            response_b_column="response2", vote_columns=["a1", "a2", "a3"])
    with pytest.raises(RowError) as info:
        parse_row({"instruction": "Say hi", "response1": "hey", "response2": "hi", "a1": 2, "a2": 0, "a3": 2},
                  options)
    assert info.value.field == "a1" and "not self-describing" in info.value.message
    assert "--label-map" in info.value.message


@pytest.mark.parametrize("scheme, expected", [
    ("1=A,2=B,0=tie", ["B", "tie", "B"]),  # PandaLM
    ("0=A,1=B,2=tie", ["tie", "A", "tie"]),  # the 0 = first convention of other sets
])
def test_pairwise_votes_through_a_label_map(scheme, expected):
    options = ImportOptions(layout="pairwise", prompt_column="instruction", response_a_column="response1",
                            response_b_column="response2", vote_columns=["a1", "a2", "a3"],
                            label_map=parse_label_map(scheme))
    parsed = parse_row({"instruction": "Say hi", "response1": "hey", "response2": "hi", "a1": 2, "a2": 0, "a3": 2},
                       options)
    assert parsed.pair["human_votes"] == expected


def test_label_map_parsing():
    assert parse_label_map(" 1 = a, 2=B ,0=Tie") == {"1": "A", "2": "B", "0": "tie"}
    for bad in ("1=A,1=B", "1:A", "1=C", "=A"):
        with pytest.raises(BadInput):
            parse_label_map(bad)


def test_pairwise_votes_from_pandalm_integers_and_majority():
    options = ImportOptions(layout="pairwise", prompt_column="instruction", response_a_column="response1",
                            response_b_column="response2", vote_columns=["a1", "a2", "a3"],
                            label_map={"1": "A", "2": "B", "0": "tie"})
    parsed = parse_row({"instruction": "Say hi", "response1": "hey", "response2": "hi", "a1": 2, "a2": 0, "a3": 2},
                       options)
    assert parsed.pair == {"response_a": "hey", "response_b": "hi", "human_choice": "B",
                           "human_votes": ["B", "tie", "B"]}
    assert parsed.warnings == []
    with pytest.raises(RowError) as info:
        parse_row({"instruction": "x", "response1": "a", "response2": "b", "a1": 7, "a2": 1, "a3": 1}, options)
    assert info.value.field == "a1"


def test_vote_values_and_majority():
    values = (1, "2", 0, "Tie", "a", 2.0, None, "x", "B")
    assert [vote_value(v) for v in values] == [None, None, None, "tie", "A", None, None, None, "B"]
    pandalm = {"1": "A", "2": "B", "0": "tie"}
    assert [vote_value(v, pandalm) for v in values] == ["A", "B", "tie", None, None, "B", None, None, None]
    # votes decide by training.judge_conventions.human_majority: an even split is a tie
    assert human_majority(["A", "B"]) == "tie" and human_majority(["A", "A", "B"]) == "A" and human_majority([]) == ""


def test_over_long_prompt_is_a_row_error():
    with pytest.raises(RowError) as info:
        parse_row({"prompt": "x" * 101}, ImportOptions(max_prompt_chars=100))
    assert info.value.field == "prompt" and "101 characters; the limit is 100" in info.value.message


def test_suggestions_recognise_each_layout():
    hh = suggest_options(["chosen", "rejected"], {"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi"})
    assert hh["layout"] == "hh_rlhf"
    panda = suggest_options(["idx", "instruction", "input", "response1", "response2", "annotator1", "annotator2"])
    assert panda["layout"] == "pairwise" and panda["vote_columns"] == ["annotator1", "annotator2"]
    assert panda["input_column"] == "input" and panda["dedupe"] == "none"  # every labelled pair is an item
    others = suggest_options(["question", "response 1", "response 2", "winner", "category"])
    assert (others["response_a_column"], others["response_b_column"]) == ("response 1", "response 2")
    assert (others["label_column"], others["subset_column"]) == ("winner", "category")
    assert suggest_options(["prompt", "output_a", "output_b", "preference"])["label_column"] == "preference"
    assert suggest_options(["messages", "id"])["layout"] == "messages"
    assert suggest_options(["question", "id"]) == {"layout": "text", "prompt_column": "question", "input_column": ""}
    assert suggest_options(["body"], {"body": "hello"})["prompt_column"] == "body"
