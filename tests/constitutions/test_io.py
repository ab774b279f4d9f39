import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constitutions import io
from constitutions.models import Constitution, ConstitutionVersion
from constitutions.starter import ensure_starter_constitution
from tests import factories
from training.judge_prompt import DEFAULT_TEMPLATE

pytestmark = pytest.mark.django_db

EXAMPLE = {"prompt": "2+2?", "response_a": "4", "response_b": "5", "preferred": "A", "rationale": "4 is right."}


def _version_with_everything(author):
    constitution = Constitution.objects.create(name="Rich <b>one</b>", description="Line one\nline two")
    template = DEFAULT_TEMPLATE.replace("Judge them", "Judge them  \n  carefully, {{literally}}")
    return factories.make_version(
        constitution,
        principles=[
            factories.principle("Honest", critique_request="Find lies.\nAll of them.", weight=2.5),
            factories.principle("Quiet", enabled=False, weight=0, category="style", revision_request="Shorter."),
        ],
        judge_template=template,
        few_shot_examples=[EXAMPLE],
        author=author,
        note="everything",
    )


@pytest.mark.parametrize("fmt", io.FORMATS)
def test_round_trip_is_lossless(author, fmt):
    version = _version_with_everything(author)
    text = io.dumps(version, fmt)
    parsed = io.loads(text, fmt)
    assert parsed.name == "Rich <b>one</b>" and parsed.description == "Line one\nline two"
    copy, created = io.import_file(parsed, author=author, name="Copy")
    assert created and copy.content_hash == version.content_hash
    assert copy.judge_template == version.judge_template and copy.few_shot_examples == [EXAMPLE]
    strip = lambda ps: [{k: v for k, v in p.items() if k != "id"} for p in ps]  # noqa: E731
    assert strip(copy.principle_dicts()) == strip(version.principle_dicts())
    assert io.dumps(copy, fmt).replace("Copy", "Rich <b>one</b>").split("source")[0] == text.split("source")[0]


def test_yaml_export_is_readable_and_carries_its_source(author):
    version = _version_with_everything(author)
    text = io.dumps(version, "yaml")
    assert "  critique_request: |-\n    Find lies.\n    All of them.\n" in text
    source = yaml.safe_load(text)["source"]
    assert source == {"constitution": "Rich <b>one</b>", "version": 1, "content_hash": version.content_hash,
                      "author": "alice", "note": "everything", "created_at": version.created_at.isoformat()}


def test_starter_constitution_round_trips_through_json():
    constitution, _ = ensure_starter_constitution()
    data = json.loads(io.dumps(constitution.latest_version, "json"))
    assert data["schema_version"] == 1 and len(data["principles"]) == 7
    assert data["principles"][0] == {
        "name": "Helpful",
        "comparison": "Which response answers the user's actual request more completely and usefully?",
        "critique_request": "Identify ways in which the response fails to address what the user asked for.",
        "revision_request": "Rewrite the response so that it fully and directly addresses the user's request.",
        "weight": 2.0, "category": "helpfulness", "enabled": True,
    }
    parsed = io.loads(json.dumps(data))
    version, created = io.import_file(parsed, author=None, into=constitution)
    assert not created and version == constitution.latest_version


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029")
                | st.sampled_from(["\n", " ", "\t", ":", "#", "'", '"', "-", "{", "}"]), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_text.filter(lambda s: s.strip()), comparison=_text.filter(lambda s: s.strip()), critique=_text,
       weight=st.floats(min_value=1e-9, max_value=1e6, allow_nan=False))
def test_round_trip_of_arbitrary_text(author, name, comparison, critique, weight):
    constitution = Constitution.objects.create(name=f"Fuzz {Constitution.objects.count()}")
    version = factories.make_version(
        constitution, principles=[factories.principle(name, comparison=comparison, critique_request=critique,
                                                      weight=weight)], author=author)
    for fmt in io.FORMATS:
        parsed = io.loads(io.dumps(version, fmt), fmt)
        assert parsed.principles[0]["name"] == name and parsed.principles[0]["critique_request"] == critique
        assert parsed.principles[0]["weight"] == weight and parsed.principles[0]["comparison"] == comparison


BAD_YAML = """\
name: Broken
principles:
  - name: Honest
    comparison: Which response is more honest?
  - name: Helpful
    comparison: Which response is more helpful?
  - name: Concise
    comparison: Which is shorter?
    weight: -1
    category: brevity
  - name: Kind
    wieght: 2
judge_template: "{principle} {conversation} {response_a} {response_b} {tone}"
few_shot_examples:
  - prompt: hi
    response_a: a
    response_b: b
    preferred: C
"""


def test_invalid_file_gets_field_level_errors_with_lines_and_saves_nothing(author):
    with pytest.raises(io.ConstitutionFileError) as info:
        io.loads(BAD_YAML, filename="broken.yaml")
    errors = info.value.errors
    assert "broken.yaml: principles[2].weight: must be ≥ 0 (line 9)" in errors
    assert any(e.startswith("broken.yaml: principles[2].category: must be one of helpfulness")
               and e.endswith("(line 10)") for e in errors)
    assert any(e.startswith("broken.yaml: principles[3].wieght: unknown field") and e.endswith("(line 12)")
               for e in errors)
    assert "broken.yaml: principles[3].comparison: is required and must be non-empty text (line 11)" in errors
    assert any("judge_template: Unknown placeholder(s): {tone}; missing placeholder(s): {answer_format}" in e
               for e in errors)
    assert any(e.startswith("broken.yaml: few_shot_examples[0].preferred: must be \"A\" or \"B\"") for e in errors)
    assert len(errors) == 6
    assert not Constitution.objects.exists() and not ConstitutionVersion.objects.exists()


@pytest.mark.parametrize("text, fmt, message", [
    ("name: [unclosed", "yaml", "invalid YAML at line "),
    ('{"name": "x",}', "json", "invalid JSON at line 1, column 14"),
    ("- just\n- a list\n", "yaml", "the document must be a mapping"),
    ("name: x\n", "yaml", "principles: is required and must be a list of principles"),
    ("name: x\nprinciples: []\n", "yaml", "principles: at least one principle is needed"),
    ("schema_version: 2\nname: x\nprinciples: [{name: a, comparison: b}]\n", "yaml", "schema_version: must be 1"),
    ("name: x\nprinciples:\n- {name: a, comparison: b}\n- {name: A, comparison: c}\n", "yaml",
     "principles[1].name: 'A' is already the name of principle 1"),
    ("name: x\nprinciples:\n- {name: a, comparison: b, enabled: false}\n", "yaml",
     "principles: at least one principle must be enabled and have a weight above 0"),
    ("name: x\nprinciples:\n- {name: a, comparison: b, weight: 'heavy'}\n", "yaml",
     "principles[0].weight: must be a number"),
])
def test_malformed_files_are_explained(text, fmt, message):
    with pytest.raises(io.ConstitutionFileError) as info:
        io.loads(text, fmt)
    assert any(message in e for e in info.value.errors), info.value.errors


def test_bytes_must_be_utf8():
    with pytest.raises(io.ConstitutionFileError, match="not UTF-8"):
        io.loads(b"name: \xff\xfe", "yaml")


def test_defaults_are_filled_and_json_is_detected():
    parsed = io.loads('{"name": "Mini", "principles": [{"name": "Honest", "comparison": "Which is honest?"}]}')
    assert parsed.judge_template == DEFAULT_TEMPLATE and parsed.few_shot_examples == []
    assert parsed.principles == [{"name": "Honest", "comparison": "Which is honest?", "critique_request": "",
                                  "revision_request": "", "weight": 1.0, "category": "custom", "enabled": True}]


def test_import_into_existing_constitution_adds_a_version(author):
    v1 = factories.make_version(author=author)
    parsed = io.loads("principles:\n- name: New\n  comparison: Which is newer?\n")
    v2, created = io.import_file(parsed, author=author, into=v1.constitution, note="from file")
    assert created and v2.number == 2 and v2.parent == v1 and v2.note == "from file"
    assert [p.name for p in v2.principles.all()] == ["New"]


def test_import_as_new_needs_a_free_name(author):
    factories.make_version(Constitution.objects.create(name="Taken"))
    parsed = io.loads("name: Taken\nprinciples:\n- {name: a, comparison: b}\n")
    with pytest.raises(io.ConstitutionFileError, match="already exists"):
        io.import_file(parsed, author=author)
    parsed.name = None
    with pytest.raises(io.ConstitutionFileError, match="name: is required"):
        io.import_file(parsed, author=author)
    assert Constitution.objects.count() == 1


def test_allow_ties_round_trips_and_changes_the_content(author):
    constitution = Constitution.objects.create(name="Ties")
    principles = [factories.principle()]
    plain, _ = ConstitutionVersion.objects.create_version(constitution, author=author, principles=principles)
    ties, created = ConstitutionVersion.objects.create_version(constitution, author=author, principles=principles,
                                                               allow_ties=True)
    assert created and ties.allow_ties and ties.content_hash != plain.content_hash
    parsed = io.loads(io.dumps(ties, "yaml"), "yaml")
    assert parsed.allow_ties is True
    again, created_again = io.import_file(parsed, author=author, into=constitution)
    assert not created_again and again.pk == ties.pk
    with pytest.raises(io.ConstitutionFileError, match="allow_ties: must be true or false"):
        io.loads("name: X\nallow_ties: maybe\nprinciples:\n  - {name: A, comparison: B?}\n", "yaml")
