"""Completed annotations from Label Studio or Argilla back in as human labels of a run's audit sample.

Accepted files:

* **Label Studio** *Export → JSON*: a list of tasks, each with ``data`` (our ``run_id``, ``comparison_id``,
  ``pair_uid``; ``meta`` is read too) and ``annotations[]``, each with ``completed_by`` and ``result[]``:
  a ``choices`` result (``value.choices`` A/B/tie) or a ``pairwise`` one (``value.selected`` left = A,
  right = B); a ``rating`` named ``confidence`` and a ``textarea`` named ``note`` are kept. Cancelled or
  empty annotations are skipped. ``completed_by`` is a bare Label Studio user id in what *Export → JSON*
  and ``GET /api/projects/<id>/export`` write (checked against Label Studio 1.23), and the
  ``{id, email, first_name, last_name}`` object in an export snapshot made with
  ``serialization_options={"annotations__completed_by": {"only_id": false}}``. A bare id is named through
  ``label_studio_users`` when given, else the annotator stays an external ``label-studio:user <id>`` and
  the report says so in ``notes``.
* **Argilla**: JSON Lines (or a JSON list) of records as Argilla 2.x ``rg.Record.to_dict()`` /
  ``dataset.records.to_json()`` writes them: ``responses`` = ``{"preference": [{"value", "user_id"}, …]}``.
  The per-user shape of the Argilla 1.x ``FeedbackDataset`` and of the server API (``responses`` =
  ``[{"user_id", "values": {"preference": {"value"}}, "status"}]``) is read too; ``discarded`` and ``draft``
  responses are skipped. Ids come from ``metadata``, else from the record id ``rlaif-<run>-<comparison>``.
  A response's ``username`` (e.g. added from ``client.users``) names the annotator, else its ``user_id``.

Annotators are matched to users by email, then username (case-insensitive); others become external
annotators ``label-studio:<email or id>`` / ``argilla:<name>``. An existing label by the same annotator is
never overwritten: the same choice counts as unchanged, a different one as a conflict. A malformed file
raises :class:`AnnotationFileError` before anything is written.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from runs.audit.interop.export import ARGILLA_NOTE, ARGILLA_QUESTION, pair_uid
from runs.gate import recheck_gate
from runs.models import AuditItem, HumanChoice, HumanLabel, Run

TOOLS = ("auto", "label_studio", "argilla")
_EXTERNAL_MAX = HumanLabel._meta.get_field("external_annotator").max_length
_RECORD_ID = re.compile(r"^rlaif-(\d+)-(\d+)$")
_CHOICES = {"a": HumanChoice.A, "b": HumanChoice.B, "tie": HumanChoice.TIE}
_SELECTED = {"left": HumanChoice.A, "right": HumanChoice.B}


class AnnotationFileError(ValueError):
    """A file that cannot be read as annotations; the message names the file, the task and the field."""

    def __init__(self, filename: str, message: str, task: int | None = None, where: str = ""):
        place = f"task {task}" if task is not None else ""
        if where:
            place = f"{place}, {where}" if place else where
        super().__init__(f"{filename}: {place + ': ' if place else ''}{message}")


@dataclass
class Annotation:
    """One annotator's answer to one task, as read from the file (not yet matched)."""

    task: int
    identity: str  # email or username or tool user id, as the tool gave it
    choice: str
    confidence: int | None = None
    note: str = ""
    by_id_only: bool = False  # a bare Label Studio user id that label_studio_users did not name


@dataclass
class Task:
    """One task / record: where it is in the file, the ids it carries and its annotations."""

    index: int
    run_id: int | None
    comparison_id: int | None
    pair_uid: str
    annotations: list[Annotation] = field(default_factory=list)
    skipped: int = 0


@dataclass
class ImportReport:
    """What an import did. ``matched``: tasks matched to an audit pair of the run; ``created``: new labels;
    ``unchanged``: answers already recorded with the same choice; ``conflicts``: an existing label by the same
    annotator with another choice (kept, not overwritten); ``unmatched``: tasks that match no pair of the
    run's audit sample, with the reason; ``skipped``: cancelled, empty, draft or discarded annotations;
    ``annotators``: each identity in the file and whom it became; ``notes``: what the reader should know
    about the import (annotators known only by a tool's user id); ``gate_met``: the run waited at its audit
    gate and the new labels let it go on."""

    tool: str
    filename: str
    tasks: int = 0
    matched: int = 0
    created: int = 0
    unchanged: int = 0
    skipped: int = 0
    conflicts: list[dict] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)
    annotators: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    gate_met: bool = False

    def as_dict(self) -> dict:
        """The report as plain data (the API's answer)."""
        return asdict(self)


# -- reading --------------------------------------------------------------------------------------------------


def _int_or_none(value, filename: str, task: int, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AnnotationFileError(filename, f"expected an integer id, got {value!r}", task, where)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnnotationFileError(filename, f"expected an integer id, got {value!r}", task, where) from None


def _choice(value, filename: str, task: int, where: str) -> str:
    choice = _CHOICES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if choice is None:
        raise AnnotationFileError(filename, f"unknown preference {value!r}; expected A, B or tie", task, where)
    return choice


def _confidence(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 5 else None


def _load(filename: str, content: bytes | str):
    """The file's JSON: one document, or JSON Lines (a list of its lines' objects)."""
    try:
        text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    except UnicodeDecodeError as exc:
        raise AnnotationFileError(filename, f"not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        rows = []
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if number == 0:
                    raise AnnotationFileError(filename, f"not JSON or JSON Lines ({first.msg}, line "
                                                        f"{first.lineno})") from None
                raise AnnotationFileError(filename, f"line {number + 1} is not JSON ({exc.msg})") from None
        return rows


def _detect(rows: list) -> str:
    first = next((row for row in rows if isinstance(row, dict)), {})
    if "annotations" in first or "data" in first:
        return "label_studio"
    if "responses" in first or "fields" in first:
        return "argilla"
    return "label_studio"


def label_studio_user_names(users) -> dict[int, str]:
    """Label Studio user id -> email (else username) from ``users``: Label Studio's user list as
    ``GET /api/users`` answers it (``[{"id", "email", "username", …}]``, or a page ``{"results": […]}``), or a
    mapping ``{id: email}``.

    Raises:
        ValueError: ``users`` is neither, or an entry has no integer id.
    """
    if users is None:
        return {}
    if isinstance(users, dict) and isinstance(users.get("results"), list):
        users = users["results"]
    if isinstance(users, dict):
        users = [{"id": key, "email": value} for key, value in users.items()]
    if not isinstance(users, list):
        raise ValueError("label_studio_users: expected Label Studio's user list or a mapping {id: email}")
    names = {}
    for n, user in enumerate(users):
        if not isinstance(user, dict):
            raise ValueError(f"label_studio_users[{n}]: expected an object with id and email")
        try:
            user_id = int(user.get("id"))
        except (TypeError, ValueError):
            raise ValueError(f"label_studio_users[{n}].id: expected an integer, got {user.get('id')!r}") from None
        name = str(user.get("email") or user.get("username") or "").strip()
        if name:
            names[user_id] = name
    return names


def _label_studio_identity(completed_by, names: dict[int, str]) -> tuple[str, bool]:
    """``(identity, by_id_only)``: the email or username the export (or ``names``) gives, else ``user <id>``."""
    if isinstance(completed_by, dict):
        for key in ("email", "username"):
            if completed_by.get(key):
                return str(completed_by[key]), False
        completed_by = completed_by.get("id", "")
    if isinstance(completed_by, int) and not isinstance(completed_by, bool):
        if completed_by in names:
            return names[completed_by], False
        return f"user {completed_by}", True
    return str(completed_by or ""), False


def _label_studio_task(row, index: int, filename: str, names: dict[int, str]) -> Task:
    if not isinstance(row, dict):
        raise AnnotationFileError(filename, "a task must be a JSON object", index)
    data = row.get("data")
    if not isinstance(data, dict):
        raise AnnotationFileError(filename, "missing or not an object", index, "field data")
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    ids = {key: data.get(key, meta.get(key)) for key in ("run_id", "comparison_id", "pair_uid")}
    task = Task(
        index=index,
        run_id=_int_or_none(ids["run_id"], filename, index, "field data.run_id"),
        comparison_id=_int_or_none(ids["comparison_id"], filename, index, "field data.comparison_id"),
        pair_uid=str(ids["pair_uid"] or ""),
    )
    annotations = row.get("annotations", [])
    if not isinstance(annotations, list):
        raise AnnotationFileError(filename, "must be a list", index, "field annotations")
    for a, annotation in enumerate(annotations):
        where = f"field annotations[{a}]"
        if not isinstance(annotation, dict):
            raise AnnotationFileError(filename, "must be an object", index, where)
        results = annotation.get("result", [])
        if not isinstance(results, list):
            raise AnnotationFileError(filename, "must be a list", index, f"{where}.result")
        if annotation.get("was_cancelled"):
            task.skipped += 1
            continue
        choice, confidence, note = None, None, ""
        for r, result in enumerate(results):
            rwhere = f"{where}.result[{r}]"
            if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
                raise AnnotationFileError(filename, "must be an object with a value object", index, rwhere)
            value, kind = result["value"], result.get("type", "")
            if kind == "choices" or "choices" in value:
                picked = value.get("choices")
                if not isinstance(picked, list) or len(picked) != 1:
                    raise AnnotationFileError(filename, "expected one choice", index, f"{rwhere}.value.choices")
                choice = _choice(picked[0], filename, index, f"{rwhere}.value.choices")
            elif kind == "pairwise" or "selected" in value:
                choice = _SELECTED.get(value.get("selected"))
                if choice is None:
                    raise AnnotationFileError(filename, f"expected 'left' or 'right', got {value.get('selected')!r}",
                                              index, f"{rwhere}.value.selected")
            elif kind == "rating":
                confidence = _confidence(value.get("rating"))
            elif kind == "textarea":
                note = "\n".join(str(t) for t in value.get("text", []) if t)
        if choice is None:
            task.skipped += 1
            continue
        identity, by_id_only = _label_studio_identity(annotation.get("completed_by"), names)
        if not identity:
            raise AnnotationFileError(filename, "no annotator", index, f"{where}.completed_by")
        task.annotations.append(Annotation(index, identity, choice, confidence, note, by_id_only))
    return task


def _argilla_responses(responses, index: int, filename: str):
    """``(identity, value, note, status)`` per user from either responses shape."""
    if isinstance(responses, dict):  # 2.x to_dict: {question: [{"value", "user_id"}]}
        by_user: dict[str, dict] = {}
        for question in (ARGILLA_QUESTION, ARGILLA_NOTE):
            answers = responses.get(question, [])
            if not isinstance(answers, list):
                raise AnnotationFileError(filename, "must be a list", index, f"field responses.{question}")
            for n, answer in enumerate(answers):
                if not isinstance(answer, dict) or not (answer.get("username") or answer.get("user_id")):
                    raise AnnotationFileError(filename, "needs a user_id", index, f"field responses.{question}[{n}]")
                who = str(answer.get("username") or answer["user_id"])
                entry = by_user.setdefault(who, {"status": answer.get("status", "submitted")})
                entry[question] = answer.get("value")
        return [(who, e.get(ARGILLA_QUESTION), e.get(ARGILLA_NOTE), e["status"]) for who, e in by_user.items()]
    if isinstance(responses, list):  # 1.x / server API: [{"user_id", "values": {question: {"value"}}, "status"}]
        found = []
        for n, response in enumerate(responses):
            where = f"field responses[{n}]"
            if not isinstance(response, dict) or not isinstance(response.get("values", {}), dict):
                raise AnnotationFileError(filename, "must be an object with a values object", index, where)
            who = response.get("username") or response.get("user_id")
            if not who:
                raise AnnotationFileError(filename, "needs a user_id", index, where)
            values = response.get("values") or {}
            value = (values.get(ARGILLA_QUESTION) or {}).get("value")
            note = (values.get(ARGILLA_NOTE) or {}).get("value")
            found.append((str(who), value, note, response.get("status", "submitted")))
        return found
    raise AnnotationFileError(filename, "must be an object or a list", index, "field responses")


def _argilla_task(row, index: int, filename: str) -> Task:
    if not isinstance(row, dict):
        raise AnnotationFileError(filename, "a record must be a JSON object", index)
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise AnnotationFileError(filename, "must be an object", index, "field metadata")
    from_id = _RECORD_ID.match(str(row.get("id") or ""))
    run_id = metadata.get("run_id", from_id.group(1) if from_id else None)
    comparison_id = metadata.get("comparison_id", from_id.group(2) if from_id else None)
    task = Task(
        index=index,
        run_id=_int_or_none(run_id, filename, index, "field metadata.run_id"),
        comparison_id=_int_or_none(comparison_id, filename, index, "field metadata.comparison_id"),
        pair_uid=str(metadata.get("pair_uid") or ""),
    )
    for who, value, note, status in _argilla_responses(row.get("responses") or {}, index, filename):
        if status in ("discarded", "draft") or value in (None, ""):
            task.skipped += 1
            continue
        choice = _choice(value, filename, index, f"field responses.{ARGILLA_QUESTION} of {who}")
        task.annotations.append(Annotation(index, who, choice, None, str(note or "")))
    return task


def read_tasks(filename: str, content: bytes | str, tool: str = "auto", *,
               label_studio_users=None) -> tuple[str, list[Task]]:
    """Parse a Label Studio or Argilla export into tasks (``tool`` "auto" decides from the first task);
    ``label_studio_users`` as in :func:`label_studio_user_names` names bare Label Studio user ids.

    Raises:
        AnnotationFileError: the file, or one task in it, is malformed.
        ValueError: an unknown ``tool`` or malformed ``label_studio_users``.
    """
    names = label_studio_user_names(label_studio_users)
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")
    rows = _load(filename, content)
    if isinstance(rows, dict):
        rows = [rows] if tool == "argilla" or "responses" in rows else rows.get("tasks", rows)
    if not isinstance(rows, list):
        raise AnnotationFileError(filename, "expected a list of tasks (Label Studio) or records (Argilla)")
    tool = _detect(rows) if tool == "auto" else tool
    if tool == "label_studio":
        return tool, [_label_studio_task(row, index, filename, names) for index, row in enumerate(rows)]
    return tool, [_argilla_task(row, index, filename) for index, row in enumerate(rows)]


# -- matching and writing -------------------------------------------------------------------------------------


def _annotator(identity: str, tool: str, users: dict) -> tuple[object | None, str]:
    """``(user, "")`` when a user has this email or username, else ``(None, "<tool>:<identity>")``."""
    if identity not in users:
        User = get_user_model()
        users[identity] = (
            User.objects.filter(email__iexact=identity).exclude(email="").order_by("pk").first()
            or User.objects.filter(username__iexact=identity).order_by("pk").first()
        )
    user = users[identity]
    if user is not None:
        return user, ""
    prefix = "label-studio" if tool == "label_studio" else "argilla"
    return None, f"{prefix}:{identity}"[:_EXTERNAL_MAX]


def _unmatched_reason(task: Task, run: Run, items: dict[int, AuditItem]) -> str:
    if task.comparison_id is None:
        return "no comparison_id"
    if task.run_id is not None and task.run_id != run.pk:
        return f"a task of run {task.run_id}"
    item = items.get(task.comparison_id)
    if item is None:
        return f"comparison {task.comparison_id} is not in this run's audit sample"
    if task.pair_uid and task.pair_uid != pair_uid(item.comparison):
        return "the pair changed since the export (pair_uid differs)"
    return ""


def import_annotations(run: Run, filename: str, content: bytes | str, tool: str = "auto", *,
                       label_studio_users=None) -> ImportReport:
    """Read ``content`` (a Label Studio or Argilla export) and add its answers as human labels of ``run``'s
    audit pairs, in one transaction; see the module docstring for the formats and rules.

    Args:
        label_studio_users: optional, Label Studio's user list (``GET /api/users``) or ``{id: email}``: names
            the annotators that a Label Studio export gives by bare user id, so they match Studio users.

    Raises:
        AnnotationFileError: a malformed file; nothing is written.
        ValueError: malformed ``label_studio_users``.
    """
    tool, tasks = read_tasks(filename, content, tool, label_studio_users=label_studio_users)
    report = ImportReport(tool=tool, filename=filename, tasks=len(tasks))
    wanted = {t.comparison_id for t in tasks if t.comparison_id is not None}
    items = {
        item.comparison_id: item
        for item in AuditItem.objects.filter(run=run, comparison_id__in=wanted).select_related(
            "comparison__prompt", "comparison__completion_a", "comparison__completion_b")
    }
    users: dict = {}
    by_id: set[str] = set()  # bare Label Studio user ids recorded as external annotators
    with transaction.atomic():
        for task in tasks:
            report.skipped += task.skipped
            reason = _unmatched_reason(task, run, items)
            if reason:
                report.unmatched.append({"task": task.index, "comparison_id": task.comparison_id,
                                         "run_id": task.run_id, "reason": reason})
                continue
            report.matched += 1
            for answer in task.annotations:
                user, external = _annotator(answer.identity, tool, users)
                report.annotators[answer.identity] = f"user {user.get_username()}" if user else external
                if answer.by_id_only and user is None:
                    by_id.add(answer.identity)
                who = Q(auditor=user) if user else Q(auditor__isnull=True, external_annotator=external)
                existing = HumanLabel.objects.filter(who, comparison_id=task.comparison_id).first()
                if existing is None:
                    HumanLabel.objects.create(
                        comparison_id=task.comparison_id, auditor=user, external_annotator=external,
                        choice=answer.choice, confidence=answer.confidence, note=answer.note[:10_000],
                    )
                    report.created += 1
                elif existing.choice == answer.choice:
                    report.unchanged += 1
                else:
                    report.conflicts.append({
                        "task": task.index, "comparison_id": task.comparison_id,
                        "annotator": report.annotators[answer.identity],
                        "existing": existing.choice, "imported": answer.choice,
                    })
    if by_id:
        named = sorted(by_id, key=lambda name: (len(name), name))
        report.notes.append(
            f"Label Studio named {len(named)} annotator{'s' if len(named) != 1 else ''} by user id only "
            f"({', '.join(named)}): their answers are kept as external annotators label-studio:user <id>, not "
            "matched to Studio users. Label Studio's Export → JSON leaves out annotators' emails; export with "
            "them to match (see README.md in the Label Studio download).")
    if report.created:
        report.gate_met = recheck_gate(run)
    return report
