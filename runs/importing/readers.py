"""Reading prompt files with the ``datasets`` library, in bounded-memory batches.

Supported: JSON lines and JSON arrays (``.jsonl``, ``.json``, optionally ``.gz``), CSV (``.csv``,
``.csv.gz``), Parquet, a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (or a
``.zip`` of one), and a Hugging Face Hub dataset id. Files are streamed (``load_dataset(...,
streaming=True)``; saved folders are memory-mapped), so memory is bounded by one batch.

``datasets``/pyarrow do not say which line of a damaged file broke them; when a read fails, a diagnostic
pass over the raw lines finds the first undecodable or malformed line so that the error can name it. With
"skip bad rows", a damaged JSON-lines file is re-read line by line and the bad lines are skipped and listed.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from runs.importing.errors import BadInput

ROW_KEY = "__row__"
SHUFFLE_BUFFER = 10_000
HUB_PROBE_TIMEOUT_S = 3.0
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SUFFIXES = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".csv": "csv", ".parquet": "parquet",
            ".zip": "disk"}
SUPPORTED = ".jsonl, .json, .csv (each optionally .gz), .parquet, a save_to_disk folder or a .zip of one"
_SAVED_MARKERS = ("state.json", "dataset_dict.json")


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
        self._rows_are_lines = False

    @property
    def unit(self) -> str:
        """What row numbers count: ``line`` (JSON lines), ``item`` (JSON arrays) or ``row``."""
        if self.kind == "json":
            return "item" if self.json_array else "line"
        return "row"

    def error(self, message: str, row: int | None = None, field: str = "") -> BadInput:
        return BadInput(message, file=self.name, row=row, unit=self.unit, field=field)

    # --- reading ----------------------------------------------------------------------------------

    def _dataset(self, options):
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
        else:
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

    def batches(self, options, *, tolerant: bool = False) -> Iterator[list[tuple[int, dict]]]:
        """Yield batches of ``options.batch_size`` ``(row, record)`` pairs, shuffled when ``options.shuffle``.

        Args:
            tolerant: JSON lines only: read line by line, skipping lines that are not valid UTF-8 JSON
                objects (recorded in :attr:`bad_lines`); rows are then line numbers.

        Raises:
            BadInput: the source cannot be read (naming the line where a diagnostic pass finds it).
        """
        if tolerant:
            yield from self._tolerant_batches(options)
            return
        try:
            # datasets reads the first block to infer features here, so a broken file can fail already
            ds = self._dataset(options)
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
        for batch in self.batches(replace(options, shuffle=False, batch_size=max(1, n))):
            out.extend(batch)
            break
        return out[:n]

    def _tolerant_batches(self, options) -> Iterator[list[tuple[int, dict]]]:
        self._rows_are_lines = True
        self.bad_lines = []
        batch: list[tuple[int, dict]] = []
        with self._open_bytes() as handle:
            for number, raw in enumerate(handle, start=1):
                problem, record = _decode_json_line(raw)
                if problem == "blank":
                    continue
                if problem:
                    self.bad_lines.append((number, problem))
                    continue
                batch.append((number, record))
                if len(batch) >= options.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    # --- diagnostics ------------------------------------------------------------------------------

    def _open_bytes(self):
        return gzip.open(self.location, "rb") if self.compressed else open(self.location, "rb")

    def read_error(self, exc: BaseException) -> BadInput:
        """Turn a reader exception into a :class:`BadInput` naming the first bad line where possible."""
        root = exc
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__
        if self.kind in ("json", "csv"):
            found = self._first_bad_line()
            if found:
                line, reason = found
                error = BadInput(reason, file=self.name, row=line, unit="line")
                error.damaged = self.kind == "json" and not self.json_array
                return error
        kind = {"json": "JSON", "csv": "CSV", "parquet": "Parquet", "disk": "a datasets folder", "hub": "a dataset"}
        text = str(root) or type(root).__name__
        if type(root).__name__ == "EmptyDataError":
            return self.error("the file is empty (no header and no rows)")
        return self.error(f"could not be read as {kind[self.kind]}: {text}")

    def _first_bad_line(self) -> tuple[int, str] | None:
        """The first line that is not UTF-8 (any text file) or not a JSON object (JSON lines)."""
        try:
            with self._open_bytes() as handle:
                if self.json_array:
                    data = handle.read()
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        line = data[: exc.start].count(b"\n") + 1
                        return line, f"not valid UTF-8 text (byte 0x{data[exc.start]:02x})"
                    try:
                        json.loads(text)
                    except json.JSONDecodeError as exc:
                        return exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"
                    return None
                for number, raw in enumerate(handle, start=1):
                    if self.kind == "csv":
                        try:
                            raw.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            byte = raw[exc.start]
                            return number, f"not valid UTF-8 text (byte 0x{byte:02x} at column {exc.start + 1})"
                        continue
                    problem, _ = _decode_json_line(raw)
                    if problem and problem != "blank":
                        return number, problem
        except (OSError, EOFError) as exc:
            return 1, f"could not be read: {exc}"
        return None

    def line_numbers(self, rows: set[int]) -> dict[int, int]:
        """Map row numbers to file line numbers (JSON lines skip blank lines); identity otherwise."""
        if self.kind != "json" or self.json_array or self._rows_are_lines or not rows:
            return {r: r for r in rows}
        wanted, found, row = set(rows), {}, 0
        with self._open_bytes() as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                row += 1
                if row in wanted:
                    found[row] = number
                    if len(found) == len(wanted):
                        break
        return {r: found.get(r, r) for r in rows}

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


def _decode_json_line(raw: bytes) -> tuple[str, dict | None]:
    """("", record) for a JSON object line, ("blank", None), or (reason, None)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", None
    if not text.strip():
        return "blank", None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} (column {exc.colno})", None
    if not isinstance(record, dict):
        return f"expected a JSON object per line, got a {type(record).__name__}", None
    return "", record


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
        folder = _saved_folder(path)
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
        return DataSource(str(_extract_zip(path, name)), name, "disk")
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


def _saved_folder(path: Path) -> Path | None:
    """The shallowest folder under ``path`` holding a ``save_to_disk`` marker file."""
    candidates = [p.parent for marker in _SAVED_MARKERS for p in path.rglob(marker)]
    if not candidates:
        return None
    return min(candidates, key=lambda p: len(p.parts))


def _extract_zip(path: Path, name: str) -> Path:
    target = Path(str(path) + ".contents")
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                    raise BadInput(f"the archive holds an unsafe path {member!r}", file=name)
            archive.extractall(target)
    except zipfile.BadZipFile as exc:
        raise BadInput(f"is not a readable zip archive: {exc}", file=name) from exc
    folder = _saved_folder(target)
    if folder is None:
        raise BadInput("the archive holds no datasets folder written by save_to_disk", file=name)
    return folder


def hub_offline_reason() -> str:
    """Why the hub cannot be used right now ("" when it answers): offline mode, or no connection."""
    import huggingface_hub.constants as hub_constants

    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    if any(os.environ.get(f, "").strip().lower() in ("1", "true", "yes", "on") for f in flags):
        return "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
    host = urlparse(hub_constants.ENDPOINT).hostname or "huggingface.co"
    try:
        _connect_within(host, 443, HUB_PROBE_TIMEOUT_S)
    except OSError as exc:
        return f"{host} is not reachable from this server ({exc.strerror or exc})"
    return ""


def _connect_within(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection to ``host:port`` within about ``timeout`` seconds in all, name lookup
    included (a socket timeout does not bound ``getaddrinfo``, which can wait for a dead resolver for long).

    Raises:
        OSError: the name does not resolve, the lookup or the connection takes too long, or it is refused.
    """
    found: dict = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    deadline = time.monotonic() + timeout
    resolver = threading.Thread(target=lookup, name="hub-probe-lookup", daemon=True)
    resolver.start()
    resolver.join(timeout)
    if resolver.is_alive():
        raise TimeoutError(f"looking up {host} took over {timeout:g} s")
    if "error" in found:
        raise found["error"]
    error: OSError = TimeoutError(f"connecting to {host} took over {timeout:g} s")
    for family, kind, proto, _, address in found["addresses"]:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(address)
                return
        except OSError as exc:
            error = exc
    raise error


def _check_hub_reachable(hub_id: str) -> None:
    reason = hub_offline_reason()
    if reason:
        raise BadInput(
            f"cannot read this Hugging Face Hub dataset: {reason}. Download it where the hub is reachable, "
            "save it with save_to_disk (or as JSONL/Parquet), and import the file or folder instead.",
            file=hub_id,
        )
