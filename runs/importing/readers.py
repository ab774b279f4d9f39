"""Reading prompt files in bounded-memory batches.

Supported: JSON lines and JSON arrays (``.jsonl``, ``.json``, optionally ``.gz``), CSV (``.csv``,
``.csv.gz``), Parquet, a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (or a
``.zip`` of one), and a Hugging Face Hub dataset id.

JSON is parsed with Python's own parser line by line (:mod:`runs.importing.textfiles`), so every problem
names its line, deep nesting is refused instead of crashing pyarrow, and "skip bad rows" skips and lists bad
lines. CSV (every cell read as text, after a header check), Parquet, saved folders and hub datasets go
through the ``datasets`` library, streamed (saved folders are memory-mapped); when a CSV read fails, a
diagnostic pass finds the first undecodable line so that the error can name it.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

from runs.importing.archives import extract_zip, saved_folder
from runs.importing.errors import BadInput
from runs.importing.textfiles import BadLine, buffer_shuffle, csv_header, json_array, json_lines
from training.hub import hub_offline_reason

ROW_KEY = "__row__"
SHUFFLE_BUFFER = 10_000
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SUFFIXES = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".csv": "csv", ".parquet": "parquet",
            ".zip": "disk"}
SUPPORTED = ".jsonl, .json, .csv (each optionally .gz), .parquet, a save_to_disk folder or a .zip of one"


def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


class DataSource:
    """One file, saved folder or hub dataset to import from.

    Build with :func:`open_source`. Iterate with :meth:`batches`, which yields lists of ``(row, record)``
    where ``row`` is the 1-based position in the source (a line number for JSON lines after
    :meth:`line_numbers`) and ``record`` a plain dict.
    """

    def __init__(self, location: str, name: str, kind: str, *, compressed: bool = False, json_array: bool = False):
        self.location = location
        self.name = name
        self.kind = kind  # json | csv | parquet | disk | hub
        self.compressed = compressed
        self.json_array = json_array
        #: set by :meth:`batches` in tolerant mode: ``[(line, reason)]`` of lines that were not JSON objects
        self.bad_lines: list[tuple[int, str]] = []
        #: a folder this source extracted (a zip's contents), removed by :meth:`close`
        self.extracted: Path | None = None

    def close(self) -> None:
        """Remove what opening the source left on disk (a zip's extracted contents)."""
        if self.extracted is not None:
            shutil.rmtree(self.extracted, ignore_errors=True)
            self.extracted = None

    @property
    def unit(self) -> str:
        """What row numbers count: ``line`` (JSON lines), ``item`` (JSON arrays) or ``row``."""
        if self.kind == "json":
            return "item" if self.json_array else "line"
        return "row"

    def error(self, message: str, row: int | None = None, field: str = "") -> BadInput:
        return BadInput(message, file=self.name, row=row, unit=self.unit, field=field)

    # --- reading ----------------------------------------------------------------------------------

    def _dataset(self, options, check_rows: int | None = None):
        """A streaming ``datasets.IterableDataset`` of the source, with a 1-based ``__row__`` column."""
        datasets = _quiet_datasets()
        if self.kind == "hub":
            _check_hub_reachable(self.name)
            try:
                ds = datasets.load_dataset(
                    self.location, name=options.dataset_config or None, split=options.dataset_split or "train",
                    streaming=True,
                )
            except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear message
                raise self.error(f"could not be read from the Hugging Face Hub: {exc}") from exc
        elif self.kind == "disk":
            ds = self._saved_dataset(options).to_iterable_dataset()
        elif self.kind == "csv":
            # every cell is text: pandas would otherwise guess numbers and booleans column by column
            header = self._csv_header(check_rows)
            features = datasets.Features({name: datasets.Value("string") for name in header})
            ds = datasets.load_dataset("csv", data_files=self.location, split="train", streaming=True,
                                       features=features, index_col=False)
        else:
            if self.estimated_rows() == 0:  # pyarrow would say "BatchSize must be greater than 0"
                raise self.error("has no rows")
            ds = datasets.load_dataset(self.kind, data_files=self.location, split="train", streaming=True)
        return ds.map(lambda batch, idx: {ROW_KEY: [i + 1 for i in idx]}, with_indices=True, batched=True)

    def _saved_dataset(self, options):
        datasets = _quiet_datasets()
        try:
            loaded = datasets.load_from_disk(self.location)
        except Exception as exc:  # noqa: BLE001
            raise self.error(f"is not a readable datasets folder (save_to_disk): {exc}") from exc
        if isinstance(loaded, datasets.DatasetDict):
            splits = list(loaded)
            split = options.dataset_split or ("train" if "train" in loaded else (splits[0] if len(splits) == 1 else ""))
            if split not in loaded:
                raise self.error(
                    f"has splits {', '.join(splits)}; choose one (dataset split)", field="dataset_split"
                )
            loaded = loaded[split]
        return loaded

    def batches(self, options, *, tolerant: bool = False, check_rows: int | None = None
                ) -> Iterator[list[tuple[int, dict]]]:
        """Yield batches of ``options.batch_size`` ``(row, record)`` pairs, shuffled when ``options.shuffle``.

        Args:
            tolerant: JSON lines only: read line by line, skipping lines that are not valid UTF-8 JSON
                objects (recorded in :attr:`bad_lines`); rows are then line numbers.

        Raises:
            BadInput: the source cannot be read (naming the line where a diagnostic pass finds it).
        """
        if self.kind == "json":
            yield from self._json_batches(options, tolerant=tolerant)
            return
        try:
            # datasets reads the first block to infer features here, so a broken file can fail already
            ds = self._dataset(options, check_rows)
        except BadInput:
            raise
        except Exception as exc:  # noqa: BLE001 - translated into a message naming the line
            raise self.read_error(exc) from exc
        if options.shuffle:
            ds = ds.shuffle(seed=options.seed, buffer_size=SHUFFLE_BUFFER)
        iterator = iter(ds.iter(batch_size=options.batch_size))
        while True:
            try:
                columns = next(iterator)
            except StopIteration:
                return
            except BadInput:
                raise
            except Exception as exc:  # noqa: BLE001 - translated into a message naming the line
                raise self.read_error(exc) from exc
            rows = columns.pop(ROW_KEY)
            names = list(columns)
            yield [
                (row, {name: columns[name][i] for name in names}) for i, row in enumerate(rows)
            ]

    def head(self, n: int, options) -> list[tuple[int, dict]]:
        """The first ``n`` rows (unshuffled), for the preview."""
        from dataclasses import replace

        out: list[tuple[int, dict]] = []
        for batch in self.batches(replace(options, shuffle=False, batch_size=max(1, n)), check_rows=max(n, 1000)):
            out.extend(batch)
            break
        return out[:n]

    def _json_batches(self, options, *, tolerant: bool) -> Iterator[list[tuple[int, dict]]]:
        """JSON lines and arrays, parsed by :mod:`runs.importing.textfiles` (rows are line numbers for JSON
        lines, item numbers for arrays); shuffled with a seeded buffer when ``options.shuffle``."""
        self.bad_lines = []
        if self.json_array:
            rows = json_array(self._open_bytes)
        else:
            rows = json_lines(self._open_bytes, tolerant=tolerant, bad_lines=self.bad_lines)
        if options.shuffle:
            rows = buffer_shuffle(rows, seed=options.seed, buffer_size=SHUFFLE_BUFFER)
        batch: list[tuple[int, dict]] = []
        try:
            for row in rows:
                batch.append(row)
                if len(batch) >= options.batch_size:
                    yield batch
                    batch = []
        except BadLine as exc:
            if exc.item is not None:
                raise BadInput(exc.reason, file=self.name, row=exc.item, unit="item", field=exc.field) from None
            error = BadInput(exc.reason, file=self.name, row=exc.line, unit="line", field=exc.field)
            error.damaged = not self.json_array
            raise error from None
        except (OSError, EOFError, zlib.error) as exc:
            raise self.error(f"could not be read: {exc}") from exc
        if batch:
            yield batch

    def _csv_header(self, check_rows: int | None = None) -> list[str]:
        """The checked header; every record (or the first ``check_rows``) must have as many fields, since
        pandas would otherwise take an extra first field as the row index and shift every column."""
        try:
            return csv_header(self._open_bytes, check_rows=check_rows)
        except BadLine as exc:
            raise BadInput(exc.reason, file=self.name, row=exc.line, unit="line") from None

    # --- diagnostics ------------------------------------------------------------------------------

    def _open_bytes(self):
        return gzip.open(self.location, "rb") if self.compressed else open(self.location, "rb")

    def read_error(self, exc: BaseException) -> BadInput:
        """Turn a reader exception into a :class:`BadInput` naming the first bad line where possible."""
        root = exc
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__
        if self.kind == "csv":
            found = self._first_bad_line()
            if found:
                line, reason = found
                return BadInput(reason, file=self.name, row=line, unit="line")
        kind = {"json": "JSON", "csv": "CSV", "parquet": "Parquet", "disk": "a datasets folder", "hub": "a dataset"}
        text = str(root) or type(root).__name__
        if type(root).__name__ == "EmptyDataError":
            return self.error("the file is empty (no header and no rows)")
        if isinstance(root, StopIteration):  # a reader that found no data at all
            return self.error("has no rows")
        return self.error(f"could not be read as {kind[self.kind]}: {text}")

    def _first_bad_line(self) -> tuple[int, str] | None:
        """The first line of a CSV file that is not UTF-8 (JSON is parsed line by line and says it itself)."""
        try:
            with self._open_bytes() as handle:
                for number, raw in enumerate(handle, start=1):
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        return number, f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        except (OSError, EOFError, zlib.error) as exc:
            return 1, f"could not be read: {exc}"
        return None

    def line_numbers(self, rows: set[int]) -> dict[int, int]:
        """Map row numbers to file line numbers: rows already are line numbers (JSON lines) or item and row
        numbers (JSON arrays, CSV, Parquet, folders), so this is the identity; kept for the importer."""
        return {r: r for r in rows}

    def estimated_rows(self) -> int | None:
        """Rows to expect (for the progress bar): exact for Parquet and saved folders, a line count for
        JSON lines and CSV, None for hub datasets and JSON arrays."""
        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                return pq.ParquetFile(self.location).metadata.num_rows
            if self.kind == "disk":
                from runs.importing.options import ImportOptions

                return len(self._saved_dataset(ImportOptions()))
            if self.kind in ("json", "csv") and not self.json_array:
                count, last = 0, b"\n"
                with self._open_bytes() as handle:
                    while chunk := handle.read(1 << 20):
                        count += chunk.count(b"\n")
                        last = chunk[-1:]
                count += last != b"\n"
                return max(0, count - (1 if self.kind == "csv" else 0))
        except Exception:  # noqa: BLE001 - an estimate only; the real read reports errors
            return None
        return None


def open_source(location: str | os.PathLike, *, name: str | None = None, hub: bool = False) -> DataSource:
    """Check a path (or hub id) and return its :class:`DataSource`, without reading the rows yet.

    Args:
        location: a file, a ``save_to_disk`` folder, a ``.zip`` of one, or (``hub=True``) a hub dataset id.
        name: the name to show in messages (e.g. the uploaded file's name); default the path's name.

    Raises:
        BadInput: missing file, empty file, unsupported extension, unsafe or unreadable zip, bad hub id.
    """
    if hub:
        hub_id = str(location).strip()
        if not HUB_ID.match(hub_id):
            raise BadInput(f"{hub_id!r} is not a Hugging Face dataset id (owner/name)", field="hub_id")
        return DataSource(hub_id, hub_id, "hub")
    path = Path(location)
    name = name or path.name
    if path.is_dir():
        folder = saved_folder(path)
        if folder is None:
            raise BadInput("is a folder but not a datasets folder written by save_to_disk", file=name)
        return DataSource(str(folder), name, "disk")
    if not path.is_file():
        raise BadInput("no such file", file=name)
    lowered = name.lower()
    compressed = lowered.endswith(".gz")
    suffix = Path(lowered[:-3] if compressed else lowered).suffix
    kind = SUFFIXES.get(suffix)
    if kind is None or (compressed and kind not in ("json", "csv")):
        shown = suffix + (".gz" if compressed else "") or "(none)"
        raise BadInput(f"unsupported file type {shown}; supported: {SUPPORTED}", file=name)
    if path.stat().st_size == 0:
        raise BadInput("the file is empty", file=name)
    if kind == "disk":
        source = DataSource(str(extract_zip(path, name)), name, "disk")
        source.extracted = Path(str(path) + ".contents")
        return source
    source = DataSource(str(path), name, kind, compressed=compressed)
    if kind == "json":
        source.json_array = _first_byte(source) == b"["
    return source


def _first_byte(source: DataSource) -> bytes:
    try:
        with source._open_bytes() as handle:
            while chunk := handle.read(4096):
                stripped = chunk.lstrip()
                if stripped:
                    return stripped[:1]
    except (OSError, EOFError) as exc:
        raise BadInput(f"could not be read: {exc}", file=source.name) from exc
    return b""


def _check_hub_reachable(hub_id: str) -> None:
    reason = hub_offline_reason()
    if reason:
        raise BadInput(
            f"cannot read this Hugging Face Hub dataset: {reason}. Download it where the hub is reachable, "
            "save it with save_to_disk (or as JSONL/Parquet), and import the file or folder instead.",
            file=hub_id,
        )
