"""The alert-store writer's spool: scored records kept on disk while the store cannot take them.

Append-only JSON Lines, one record a line (the fields of
:class:`~fraudrisk.alerts.records.ScoreRecord`), in segment files under one folder
(``HOME/api-spool`` by default). A process appends to its *open* segment
(``<time>-<pid>-<n>.jsonl.open``, locked with ``flock`` while open); sealing renames it to
``….jsonl``, and a replay writes sealed segments to the store in name (time) order and removes
each once it is all written. The store's upsert is idempotent by transaction id, so a segment
replayed twice (a crash after its writes, before its removal) changes nothing. A segment left
open by a process that died (its lock is free) is sealed by the next :meth:`ScoreSpool.recover`.

Records the database refuses (a data error, not an outage) and lines that cannot be read (a
write torn by a crash) are moved to ``rejected/`` with the reason, never replayed by themselves
and never deleted. Card data never reaches the spool: records hold only ids, amount, time and
the decision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from fraudrisk.alerts.records import POLICY_DEFAULTS, RECORD_FIELDS, ScoreColumns

log = logging.getLogger(__name__)
SEALED = ".jsonl"
OPEN = ".jsonl.open"
REJECTED_DIR = "rejected"


def empty_columns() -> ScoreColumns:
    """A batch of no records."""
    return ScoreColumns(*([] for _ in RECORD_FIELDS))


def concat(parts: list[ScoreColumns]) -> ScoreColumns:
    """One batch of the records of ``parts``, in order."""
    if len(parts) == 1:
        return parts[0]
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_FIELDS}
    for part in parts:
        for name in RECORD_FIELDS:
            columns[name].extend(getattr(part, name))
    return ScoreColumns(**columns)


def split(columns: ScoreColumns, size: int) -> Iterator[ScoreColumns]:
    """Consecutive slices of at most ``size`` records."""
    for start in range(0, len(columns), size):
        yield ScoreColumns(*(getattr(columns, n)[start : start + size] for n in RECORD_FIELDS))


def encode(columns: ScoreColumns) -> bytes:
    """The JSON lines of a batch (times as ISO 8601)."""
    rows = zip(*(getattr(columns, name) for name in RECORD_FIELDS), strict=True)
    return b"".join(
        orjson.dumps(dict(zip(RECORD_FIELDS, row, strict=True))) + b"\n" for row in rows
    )


def decode(lines: list[bytes]) -> tuple[ScoreColumns, list[bytes]]:
    """The records of JSON lines, and the lines that are not records (e.g. torn by a crash)."""
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_FIELDS}
    bad = []
    for line in lines:
        try:
            record = orjson.loads(line)
            values = [_field(record, name) for name in RECORD_FIELDS]
            values[RECORD_FIELDS.index("tx_datetime")] = dt.datetime.fromisoformat(
                record["tx_datetime"]
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            bad.append(line)
            continue
        for name, value in zip(RECORD_FIELDS, values, strict=True):
            columns[name].append(value)
    return ScoreColumns(**columns), bad


def _field(record: dict[str, Any], name: str) -> Any:
    """A field of a spooled record (one spooled before the policy fields reads their defaults).

    Raises:
        KeyError: If another field is missing (not a record).
    """
    if name in POLICY_DEFAULTS:
        return record.get(name, POLICY_DEFAULTS[name])
    return record[name]


class ScoreSpool:
    """Segments of spooled records in one folder; safe across threads (and processes)."""

    def __init__(self, directory: Path, on_reject: Callable[[int], None] | None = None) -> None:
        """Use ``directory`` (created on first use); ``on_reject`` counts rejected records."""
        self.directory = directory
        self.on_reject = on_reject
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._sequence = 0
        self._pending = 0

    @property
    def pending(self) -> int:
        """Records spooled and not yet replayed (as this process knows them)."""
        return self._pending

    def recover(self) -> int:
        """Seal the segments of processes that are gone; returns the records waiting.

        Raises:
            OSError: If the folder cannot be created or read.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob(f"*{OPEN}")):
            if path != self._path and _unlocked(path):
                path.rename(path.with_name(path.name.removesuffix(OPEN) + SEALED))
        with self._lock:
            self._pending = sum(_count_lines(path) for path in self.sealed()) + self._open_count()
            return self._pending

    def append(self, columns: ScoreColumns, *, durable: bool) -> None:
        """Add records to the open segment (``durable``: and fsync it).

        Raises:
            OSError: If the spool cannot be written.
        """
        data = encode(columns)
        with self._lock:
            handle = self._open_segment()
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
            self._pending += len(columns)

    def seal(self) -> None:
        """Close the open segment (if any), so that it can be replayed."""
        with self._lock:
            self._seal()

    def sealed(self) -> list[Path]:
        """The sealed segments, oldest first."""
        return sorted(self.directory.glob(f"*{SEALED}"))

    def replay(self, write: Callable[[ScoreColumns], object], batch_size: int) -> int:
        """Seal the open segment, then write every sealed one in order and remove it.

        A segment another process is replaying is skipped. An exception of ``write`` stops the
        replay there; the segment stays and is replayed whole next time.

        Returns:
            How many records were replayed.

        Raises:
            Exception: Whatever ``write`` raised.
        """
        self.seal()
        replayed = 0
        for path in self.sealed():
            with _locked(path) as handle:
                if handle is None:
                    continue
                lines = [line for line in handle.read().splitlines() if line.strip()]
                columns, bad = decode(lines)
                if bad:
                    self.reject(bad, f"{path.name}: unreadable lines")
                for part in split(columns, batch_size):
                    write(part)
                path.unlink(missing_ok=True)
            replayed += len(columns)
            with self._lock:
                self._pending = max(0, self._pending - len(lines))
        return replayed

    def reject(self, lines: list[bytes] | ScoreColumns, reason: str) -> Path:
        """Keep records that must not be replayed by themselves, with the reason, for people.

        Raises:
            OSError: If the rejected folder cannot be written.
        """
        data = encode(lines) if isinstance(lines, ScoreColumns) else b"\n".join(lines) + b"\n"
        folder = self.directory / REJECTED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_stamp()}-{os.getpid()}{SEALED}"
        path.with_suffix(".reason").write_text(reason + "\n")
        path.write_bytes(data)
        count = len(lines)
        log.error("%d records not stored, kept in %s: %s", count, path, reason)
        if self.on_reject is not None:
            self.on_reject(count)
        return path

    def close(self) -> None:
        """Seal the open segment (the next start replays it)."""
        self.seal()

    # ------------------------------------------------------------------------- segments
    def _open_segment(self) -> IO[bytes]:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            name = f"{_stamp()}-{os.getpid()}-{self._sequence:06d}{OPEN}"
            self._path = self.directory / name
            self._file = self._path.open("ab")
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        return self._file

    def _seal(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.close()  # releases the lock
        self._path.rename(self._path.with_name(self._path.name.removesuffix(OPEN) + SEALED))
        self._file = self._path = None

    def _open_count(self) -> int:
        return _count_lines(self._path) if self._path is not None else 0


def _stamp() -> str:
    """A name prefix that sorts in time order."""
    return f"{time.time_ns():020d}"


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _unlocked(path: Path) -> bool:
    """Whether no process holds the segment's lock (its writer is gone)."""
    with _locked(path) as handle:
        return handle is not None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[bytes] | None]:
    """The file, opened and locked by this process; None if another holds it or it is gone."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield handle
