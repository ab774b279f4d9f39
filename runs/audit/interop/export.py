"""An audit sample as a Label Studio project (tasks + pairwise labeling config) or as Argilla 2.x records.

Each audit pair becomes one task / record carrying the prompt (rendered as text; chat prompts also as turns),
``response_a`` and ``response_b`` in the comparison's order, the principle's question, and the ids that bring
the annotations back: run id, comparison id and a pair uid (a digest of the run, the comparison and the
texts, so a changed pair is not matched). Nothing of the AI's side, nor other labels, is exported.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile

from runs.models import AuditItem, Comparison, Run

#: The preference labels, as Label Studio choices and Argilla labels; the same values as ``HumanChoice``.
LABELS = ("A", "B", "tie")
#: Argilla's question name for the preference (a ``LabelQuestion``), and its optional note (``TextQuestion``).
ARGILLA_QUESTION = "preference"
ARGILLA_NOTE = "note"

#: Label Studio labeling config: the prompt as dialogue turns, the two responses side by side, a required
#: A/B/tie choice, an optional 1-5 confidence and a note. The import also reads ``<Pairwise>`` results.
LABEL_STUDIO_CONFIG = """<View>
  <Header value="$question"/>
  <Paragraphs name="prompt" value="$prompt_turns" layout="dialogue" nameKey="role" textKey="content"/>
  <View style="display: grid; grid-template-columns: 1fr 1fr; column-gap: 1em">
    <View>
      <Header value="Response A"/>
      <Text name="response_a" value="$response_a"/>
    </View>
    <View>
      <Header value="Response B"/>
      <Text name="response_b" value="$response_b"/>
    </View>
  </View>
  <Choices name="preference" toName="response_a" choice="single-radio" required="true" showInline="true">
    <Choice value="A" hotkey="a"/>
    <Choice value="B" hotkey="b"/>
    <Choice value="tie" hotkey="t"/>
  </Choices>
  <Rating name="confidence" toName="response_a" maxRating="5"/>
  <TextArea name="note" toName="response_a" rows="2" placeholder="Note (optional)"/>
</View>
"""

_README = """# Audit sample of run {run_id} ({name}) for Label Studio

{n} pairs to label blind: which response is better, A, B or tie. No AI verdict is included.

1. Create a project; under *Labeling Setup → Code* paste `label_config.xml`.
2. *Import* `tasks.json`.
3. Label. Then *Export → JSON* and upload that file on the run's audit page (*Import annotations*).

Each task's `data` holds `run_id`, `comparison_id` and `pair_uid`: keep them, they bring the labels back.
A `<Pairwise>` config works too (left = A, right = B), without ties.

## Annotators

Annotators are matched to Studio users by email (else kept as external annotators `label-studio:<email>`).
*Export → JSON* names each annotator by Label Studio user id only (`"completed_by": 3`); such labels are
kept as external annotators `label-studio:user 3`. To match annotators to Studio users, export with their
emails through Label Studio's API, e.g. with `label-studio-sdk` and your access token (*Account & Settings*):

    import time
    from label_studio_sdk import LabelStudio

    ls = LabelStudio(base_url="http://localhost:8080", api_key="<access token>")
    export = ls.projects.exports.create(PROJECT_ID, serialization_options={{
        "annotations__completed_by": {{"only_id": False}}}})
    while ls.projects.exports.get(PROJECT_ID, export.id).status not in ("completed", "failed"):
        time.sleep(1)
    with open("annotations.json", "wb") as f:
        for chunk in ls.projects.exports.download(PROJECT_ID, export.id, export_type="JSON"):
            f.write(chunk)

and upload `annotations.json`. (Through the API of this Studio, an *Export → JSON* file can instead be sent
with Label Studio's user list, the answer of its `GET /api/users`, as `label_studio_users`.)
"""


def pair_uid(comparison: Comparison) -> str:
    """A short digest of the run, the comparison and its texts: an exported pair is matched on import only if
    none of them changed since."""
    parts = (
        str(comparison.run_id), str(comparison.pk), comparison.prompt.text,
        comparison.completion_a.text, comparison.completion_b.text,
    )
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def _turns(prompt) -> list[dict[str, str]]:
    """The prompt as dialogue turns: its chat messages, or one user turn holding the plain text."""
    if prompt.messages:
        return [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in prompt.messages]
    return [{"role": "user", "content": prompt.text}]


def _items(run: Run):
    return (
        AuditItem.objects.filter(run=run)
        .select_related("comparison__prompt", "comparison__completion_a", "comparison__completion_b",
                        "judgment__principle")
        .order_by("comparison_id")
    )


def _pair(item: AuditItem) -> dict:
    comparison = item.comparison
    principle = item.judgment.principle if item.judgment else None
    return {
        "prompt": comparison.prompt.text,
        "prompt_turns": _turns(comparison.prompt),
        "response_a": comparison.completion_a.text,
        "response_b": comparison.completion_b.text,
        "question": principle.comparison if principle else "",
        "principle": principle.name if principle else "",
        "run_id": comparison.run_id,
        "comparison_id": comparison.pk,
        "pair_uid": pair_uid(comparison),
    }


def label_studio_tasks(run: Run) -> list[dict]:
    """One Label Studio task per audit pair: ``data`` (texts and ids) and ``meta`` (the ids again)."""
    tasks = []
    for item in _items(run):
        data = _pair(item)
        tasks.append({"data": data, "meta": {k: data[k] for k in ("run_id", "comparison_id", "pair_uid")}})
    return tasks


def label_studio_zip(run: Run) -> bytes:
    """A zip with ``tasks.json``, ``label_config.xml`` and ``README.md``: a Label Studio project to create."""
    tasks = label_studio_tasks(run)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tasks.json", json.dumps(tasks, ensure_ascii=False, indent=1))
        archive.writestr("label_config.xml", LABEL_STUDIO_CONFIG)
        archive.writestr("README.md", _README.format(run_id=run.pk, name=run.name, n=len(tasks)))
    return buffer.getvalue()


def argilla_record_id(run_id: int, comparison_id: int) -> str:
    """The record id of a pair; the import reads the ids back from it when metadata were dropped."""
    return f"rlaif-{run_id}-{comparison_id}"


def argilla_records(run: Run) -> list[dict]:
    """One Argilla 2.x record per audit pair, shaped as ``rg.Record.to_dict()`` (``rg.Record.from_dict``
    reads it back): fields ``prompt``/``response_a``/``response_b``, metadata with the ids and the principle,
    no suggestions or responses. The dataset's settings to create first::

        rg.Settings(
            fields=[rg.TextField("prompt"), rg.TextField("response_a"), rg.TextField("response_b")],
            questions=[rg.LabelQuestion("preference", labels=["A", "B", "tie"]),
                       rg.TextQuestion("note", required=False)],
            metadata=[rg.IntegerMetadataProperty("run_id"), rg.IntegerMetadataProperty("comparison_id"),
                      rg.TermsMetadataProperty("pair_uid"), rg.TermsMetadataProperty("principle")],
        )
    """
    records = []
    for item in _items(run):
        pair = _pair(item)
        records.append({
            "id": argilla_record_id(pair["run_id"], pair["comparison_id"]),
            "fields": {"prompt": pair["prompt"], "response_a": pair["response_a"], "response_b": pair["response_b"]},
            "metadata": {k: pair[k] for k in ("run_id", "comparison_id", "pair_uid", "principle")},
            "suggestions": {},
            "responses": {},
            "vectors": {},
            "_server_id": None,
        })
    return records


def argilla_jsonl(run: Run) -> str:
    """:func:`argilla_records` as JSON Lines."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in argilla_records(run))
