"""Errors of the prompt importer: one clear message naming the file, the line or row, and the field."""
from __future__ import annotations


class BadInput(ValueError):
    """Input that cannot be imported.

    Attributes:
        message: what is wrong, e.g. ``"is empty"``.
        file: the file name or hub dataset id ("" when not about a file).
        row: 1-based line (JSONL), row (CSV, Parquet, datasets folders) or item (JSON arrays); None when
            the problem is not about one row.
        unit: ``"line"``, ``"row"`` or ``"item"``: what ``row`` counts.
        field: the column, or a path inside it (``"messages[2].role"``); "" when not about one field.

    ``str(error)`` reads ``"data.jsonl, line 7, field 'prompt': is empty"``.
    """

    def __init__(self, message: str, *, file: str = "", row: int | None = None, unit: str = "row", field: str = ""):
        self.message = message
        self.file = file
        self.row = row
        self.unit = unit
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"{self.unit} {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict:
        """JSON-ready form, as stored in ``PromptSet.import_report['error']``."""
        return {"message": str(self), "file": self.file, "row": self.row, "unit": self.unit, "field": self.field}


class RowError(ValueError):
    """A problem with one row, raised by the row parsers; the importer adds file and row and either
    raises :class:`BadInput` or records the row as skipped."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
