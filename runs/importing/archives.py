"""Zipped ``save_to_disk`` folders: found and extracted within limits (a zip bomb is refused, and whatever was
extracted is removed on failure)."""
from __future__ import annotations

import shutil
import zipfile
import zlib
from pathlib import Path

from runs.importing.errors import BadInput

SAVED_MARKERS = ("state.json", "dataset_dict.json")


def saved_folder(path: Path) -> Path | None:
    """The shallowest folder under ``path`` holding a ``save_to_disk`` marker file."""
    candidates = [p.parent for marker in SAVED_MARKERS for p in path.rglob(marker)]
    if not candidates:
        return None
    return min(candidates, key=lambda p: len(p.parts))


#: Limits on a zip's contents, checked against the headers and again while extracting (headers can lie):
#: the total size extracted, and how many times larger than the archive's compressed data it may grow.
ZIP_MAX_TOTAL_BYTES = 4 * 1024**3
ZIP_MAX_RATIO = 200
ZIP_MAX_MEMBERS = 10_000


def extract_zip(path: Path, name: str) -> Path:
    """Extract a zipped ``save_to_disk`` folder next to it (``<zip>.contents``), within limits.

    Refused: unsafe member paths, more than :data:`ZIP_MAX_MEMBERS` members, more than
    :data:`ZIP_MAX_TOTAL_BYTES` extracted, or an expansion over :data:`ZIP_MAX_RATIO` times the archive's
    size (a zip bomb). Sizes are counted while extracting, not only taken from the headers. On any
    failure the partly extracted folder is removed.

    Raises:
        BadInput: naming the archive (and the member where one is at fault).
    """
    target = Path(str(path) + ".contents")
    budget = min(ZIP_MAX_TOTAL_BYTES, max(1, path.stat().st_size) * ZIP_MAX_RATIO)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > ZIP_MAX_MEMBERS:
                raise BadInput(f"the archive holds {len(members):,} files; the limit is {ZIP_MAX_MEMBERS:,}", file=name)
            for member in members:
                if member.filename.startswith(("/", "\\")) or ".." in Path(member.filename).parts:
                    raise BadInput(f"the archive holds an unsafe path {member.filename!r}", file=name)
            declared = sum(m.file_size for m in members)
            if declared > budget:
                raise BadInput(_zip_too_big(declared, path, budget), file=name)
            written = 0
            for member in members:
                destination = target / member.filename
                if member.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(destination, "wb") as out:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        if written > budget:
                            raise BadInput(_zip_too_big(written, path, budget), file=name, field=member.filename)
                        out.write(chunk)
    except BadInput:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise BadInput(f"is not a readable zip archive: {exc}", file=name) from exc
    folder = saved_folder(target)
    if folder is None:
        shutil.rmtree(target, ignore_errors=True)
        raise BadInput("the archive holds no datasets folder written by save_to_disk", file=name)
    return folder


def _zip_too_big(size: int, path: Path, budget: int) -> str:
    return (
        f"the archive expands to more than {budget:,} bytes (at least {size:,} from {path.stat().st_size:,}; "
        f"the limits are {ZIP_MAX_RATIO}× the archive and {ZIP_MAX_TOTAL_BYTES:,} bytes): refused as a zip bomb"
    )
