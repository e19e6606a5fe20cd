"""Reading a deployment's prediction-log folder incrementally (the importer's side of workers.serving.prediction_log).

A model server appends complete JSON lines to `<name>.jsonl.part` and renames it to `<name>.jsonl` once it is
finished. The importer keeps one byte offset per file, keyed by the name WITHOUT `.part`, so a file renamed while the
importer was half-way through it is continued where it stopped, not read twice. Only complete lines (ending in a
newline) are taken from an in-progress file: a half-written last line is left for the next read. A finished file has
no writer any more, so a last line without a newline is counted as bad and the file is read to its end.

A line that is not a JSON object is skipped and counted, never stops the import: one damaged line must not hold
back every prediction after it. Standard library only, no Django: the portal's worker calls it with offsets it keeps
in its database.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.serving.prediction_log import PART_SUFFIX

FINISHED_SUFFIX = ".jsonl"
# The most bytes one read takes from the folder, so an import after a long outage works in bounded steps.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass
class LogChunk:
    """What was read from one file: its records between `start` and `end` (the new offset)."""

    name: str  # the file's name without `.part`: the offset's key
    path: Path  # where it was read (the `.jsonl` or `.jsonl.part` file)
    start: int
    end: int
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: int = 0
    finished: bool = False  # the file is complete (.jsonl) and `end` is its end: it can be deleted once recorded


@dataclass
class LogRead:
    chunks: list[LogChunk]

    @property
    def records(self) -> int:
        return sum(len(chunk.records) for chunk in self.chunks)

    @property
    def bad_lines(self) -> int:
        return sum(chunk.bad_lines for chunk in self.chunks)

    def offsets(self) -> dict[str, int]:
        return {chunk.name: chunk.end for chunk in self.chunks}

    def finished(self) -> list[str]:
        return [chunk.name for chunk in self.chunks if chunk.finished]


def log_key(file_name: str) -> str:
    """The offset key of a log file: its name without `.part`."""
    return file_name.removesuffix(".part")


def _candidates(folder: Path) -> list[Path]:
    """Log files in the folder and in its sub-folders one level down: the docker and kubernetes runners give each
    replica a folder of its own (its files carry a process id that every container shares)."""
    files = [path for path in folder.iterdir() if not path.is_dir()]
    for sub in folder.iterdir():
        if sub.is_dir():
            files += [path for path in sub.iterdir() if not path.is_dir()]
    return files


def log_files(folder: Path) -> dict[str, Path]:
    """The folder's log files by key (the path relative to the folder, without `.part`), oldest name first (names
    start with the UTC time they were opened). When both `x.jsonl.part` and `x.jsonl` are listed (a rename between two
    directory reads), the finished one wins."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(_candidates(folder), key=lambda candidate: (candidate.name, str(candidate))):
        if path.name.endswith(PART_SUFFIX) or path.name.endswith(FINISHED_SUFFIX):
            key = log_key(path.relative_to(folder).as_posix())
            if key not in found or path.name.endswith(FINISHED_SUFFIX):
                found[key] = path
    return dict(sorted(found.items()))


def read_log_folder(folder: Path, offsets: dict[str, int], *, max_bytes: int = DEFAULT_MAX_BYTES) -> LogRead:
    """New complete records of every log file in `folder` after its offset (0 for a file not in `offsets`), at most
    about `max_bytes` in all (the rest on the next call). Files whose content is all read yield a chunk too (with no
    records) so a finished one can be marked and deleted."""
    chunks: list[LogChunk] = []
    budget = max_bytes
    for key, path in log_files(Path(folder)).items():
        if budget <= 0:
            break
        chunk = _read_file(key, path, offsets.get(key, 0), budget)
        if chunk is None:
            continue
        budget -= chunk.end - chunk.start
        chunks.append(chunk)
    return LogRead(chunks=chunks)


def _read_file(key: str, path: Path, offset: int, budget: int) -> LogChunk | None:
    """One file's new complete lines; None when the file disappeared (deleted, or renamed since it was listed and
    not found under its finished name either)."""
    opened = _open(path)
    if opened is None:
        return None
    stream, path = opened
    finished = path.name.endswith(FINISHED_SUFFIX)
    with stream:
        size = stream.seek(0, 2)
        stream.seek(min(offset, size))
        data = stream.read(min(size - offset, budget)) if size > offset else b""
    complete = data[: data.rfind(b"\n") + 1]
    reached_end = offset + len(data) >= size
    tail = data[len(complete) :] if finished and reached_end else b""
    chunk = LogChunk(name=key, path=path, start=offset, end=offset + len(complete) + len(tail))
    for line in complete.splitlines():
        _take(line, chunk)
    if tail:  # a finished file's last line without a newline: nobody will complete it
        chunk.bad_lines += 1
    chunk.finished = finished and chunk.end >= size
    return chunk


def _open(path: Path):
    """The file opened for reading, trying its finished name when an in-progress file was renamed meanwhile."""
    candidates = [path]
    if path.name.endswith(PART_SUFFIX):
        candidates.append(path.with_name(log_key(path.name)))
    for candidate in candidates:
        try:
            return open(candidate, "rb"), candidate
        except FileNotFoundError:
            continue
    return None


def _take(line: bytes, chunk: LogChunk) -> None:
    if not line.strip():
        return
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        chunk.bad_lines += 1
        return
    if isinstance(record, dict):
        chunk.records.append(record)
    else:
        chunk.bad_lines += 1
