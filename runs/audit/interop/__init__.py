"""Interop with annotation tools: an audit sample out as a Label Studio project or Argilla records, and the
completed annotations back in as human labels.

The export keeps the audit blind: it holds the prompt, the two responses and the principle's question, never
an AI verdict, probability, rationale, stratum or anyone's label.

Public API:

* :func:`label_studio_zip` ``(run) -> bytes`` — ``tasks.json``, ``label_config.xml`` and ``README.md``.
* :func:`argilla_jsonl` ``(run) -> str`` — one Argilla 2.x ``rg.Record.to_dict()`` per line.
* :func:`import_annotations` ``(run, filename, content, tool="auto", *, label_studio_users=None) ->
  ImportReport`` — all or nothing; raises :class:`AnnotationFileError` naming the file, the task and the
  field on a malformed file. ``label_studio_users`` (Label Studio's ``GET /api/users``) names annotators that
  a Label Studio export gives by bare user id.
"""
from __future__ import annotations

from runs.audit.interop.annotations import (
    AnnotationFileError,
    ImportReport,
    import_annotations,
    label_studio_user_names,
)
from runs.audit.interop.export import (
    ARGILLA_QUESTION,
    LABEL_STUDIO_CONFIG,
    argilla_jsonl,
    argilla_records,
    label_studio_tasks,
    label_studio_zip,
    pair_uid,
)

__all__ = [
    "ARGILLA_QUESTION", "LABEL_STUDIO_CONFIG", "AnnotationFileError", "ImportReport", "argilla_jsonl",
    "argilla_records", "import_annotations", "label_studio_tasks", "label_studio_user_names", "label_studio_zip",
    "pair_uid",
]
