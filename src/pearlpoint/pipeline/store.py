"""The run directory: where a batch keeps its records, its manifest and its bad rows.

A run directory holds ``records.jsonl`` (local runs) and ``records-*.jsonl`` shards (one per Ray
worker), ``run.json`` (config, versions, counts, usage, timing) and ``bad_rows.jsonl``. Records are
appended one line at a time with a single ``write`` on an ``O_APPEND`` descriptor followed by
``fsync``, so a crash can at worst leave one torn last line; readers skip it and writers cut it off
before appending, which is what makes ``kill -9`` followed by a rerun end with every row once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pearlpoint.io import repair_torn_tail

RECORDS_FILE = "records.jsonl"
SHARD_GLOB = "records-*.jsonl"
RUN_FILE = "run.json"
BAD_ROWS_FILE = "bad_rows.jsonl"


def record_files(run_dir: str | Path) -> list[Path]:
    """Every records file of a run: the local file first, then the shards in name order."""
    run_dir = Path(run_dir)
    files = []
    main = run_dir / RECORDS_FILE
    if main.exists():
        files.append(main)
    files.extend(sorted(run_dir.glob(SHARD_GLOB)))
    return files


def iter_jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the complete JSON objects of a records file, skipping a torn or corrupt line."""
    for _, obj in _iter_numbered(path):
        yield obj


def _iter_numbered(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh):
            if not raw.endswith(b"\n"):
                break  # torn tail from an interrupted write
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(obj, dict):
                yield n, obj


def iter_run_records(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Yield every record line of a run (all files), in file order, duplicates included."""
    for path in record_files(run_dir):
        yield from iter_jsonl_records(path)


def is_failed(record: dict[str, Any]) -> bool:
    """A record counts as failed when it carries an error or has no answer at all."""
    return bool(record.get("error")) or not record.get("iterates")


@dataclass(frozen=True)
class Winner:
    """Where the record that counts for an id lives, and whether it failed (no record kept)."""

    file: int
    line: int
    failed: bool
    error: str | None


def scan_winners(run_dir: str | Path) -> dict[str, Winner]:
    """One entry per id: a successful record wins over a failed one; among equals the last wins.

    A failed row retried with ``--retry-failed`` leaves its old failure line in the file; the
    successful retry supersedes it, so exports and counts see each row once. Only positions are
    kept, never records: memory grows with the number of ids, not with the size of the run.
    """
    best: dict[str, Winner] = {}
    for fi, path in enumerate(record_files(run_dir)):
        for line, rec in _iter_numbered(path):
            rid = rec.get("id")
            if rid is None:
                continue
            rid = str(rid)
            failed = is_failed(rec)
            prev = best.get(rid)
            if prev is None or not failed or prev.failed:
                err = rec.get("error") if failed else None
                best[rid] = Winner(fi, line, failed, str(err)[:500] if err else ("no answer" if failed else None))
    return best


def iter_latest_records(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Stream one record per id (see :func:`scan_winners`), in file order."""
    winners = {(w.file, w.line) for w in scan_winners(run_dir).values()}
    for fi, path in enumerate(record_files(run_dir)):
        for line, rec in _iter_numbered(path):
            if (fi, line) in winners:
                yield rec


def latest_records(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """One record per id, as a dict (small runs and tests; big runs use iter_latest_records)."""
    return {str(r["id"]): r for r in iter_latest_records(run_dir)}


@dataclass
class RunState:
    """What earlier invocations already did: ids finished and ids that failed."""

    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunState:
        state = cls()
        for rid, w in scan_winners(run_dir).items():
            (state.failed if w.failed else state.done).add(rid)
        return state


class RecordWriter:
    """Appends one JSON line per record: one ``os.write`` on O_APPEND, made durable by ``fsync``.

    The write itself happens at once (so a ``kill -9`` right after it loses nothing: the page
    cache survives the process); the ``fsync`` that protects against power loss runs in a
    background thread that syncs whatever was written since its last pass (group commit), so an
    async batch loop is never blocked for milliseconds per record. ``close`` syncs what is left.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._fsync = fsync
        self.written = 0
        self.synced = 0
        self._dirty = threading.Event()
        self._closing = False
        self._syncer: threading.Thread | None = None
        if fsync:
            self._syncer = threading.Thread(target=self._sync_loop, name=f"fsync:{self.path.name}", daemon=True)
            self._syncer.start()

    def _sync_loop(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            target = self.written
            try:
                os.fsync(self._fd)
            except OSError:
                return  # closed underneath us; close() does its own final sync
            self.synced = target
            if self._closing:
                return

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.written += 1
        if self._fsync:
            self._dirty.set()

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._syncer is not None:
            self._closing = True
            self._dirty.set()
            self._syncer.join(timeout=30)
        if self._fsync:
            os.fsync(self._fd)
            self.synced = self.written
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return {}
