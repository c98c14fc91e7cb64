"""The audit log: one SQLite row per decision the proxy makes.

By default only a sha256 of the conversation is kept (so a known prompt can be matched without the
log holding user text); full text only when ``audit.store_text`` is on. Writes go through one
background thread so the event loop never waits on the disk and SQLite sees a single writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pearlpoint.errors import InputError, PearlError

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id    TEXT NOT NULL,
  ts            REAL NOT NULL,
  client        TEXT,
  model         TEXT,
  prompt_hash   TEXT NOT NULL,
  conversation  TEXT,
  answer        TEXT,
  turns         INTEGER,
  language      TEXT,
  category      TEXT,
  level         TEXT,
  intent        TEXT,
  strategy      TEXT,
  posterior     TEXT,
  scores        TEXT,
  status        INTEGER,
  error         TEXT,
  stream        INTEGER,
  refine_steps  INTEGER,
  leak_blocked  INTEGER,
  latency_ms    REAL
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions(ts);
CREATE INDEX IF NOT EXISTS decisions_level ON decisions(level);
CREATE INDEX IF NOT EXISTS decisions_strategy ON decisions(strategy);
"""

COLUMNS = ("request_id", "ts", "client", "model", "prompt_hash", "conversation", "answer", "turns",
           "language", "category", "level", "intent", "strategy", "posterior", "scores", "status",
           "error", "stream", "refine_steps", "leak_blocked", "latency_ms")


class AuditEntry(BaseModel):
    request_id: str
    ts: float = Field(default_factory=time.time)
    client: str | None = None
    model: str | None = None
    prompt_hash: str
    conversation: str | None = None
    answer: str | None = None
    turns: int = 0
    language: str | None = None
    category: str | None = None
    level: str | None = None
    intent: str | None = None
    strategy: str | None = None
    posterior: dict[str, float] | None = None
    scores: dict[str, Any] | None = None
    status: int = 200
    error: str | None = None
    stream: bool = False
    refine_steps: int = 0
    leak_blocked: bool = False
    latency_ms: float | None = None


def conversation_hash(messages: Iterable[dict[str, Any]]) -> str:
    canon = json.dumps([{"role": m.get("role"), "content": m.get("content")} for m in messages],
                       ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def create_private(path: Path, *, file_mode: int = 0o600, dir_mode: int = 0o700) -> None:
    """Create the audit database file (and any missing directories) with private permissions before
    SQLite opens it: the log holds client names, levels and (with ``store_text``) whole conversations,
    so it must not be world-readable. SQLite gives its -wal/-shm files the database file's mode.
    Existing files and directories keep their permissions (an operator may have chosen them)."""
    missing = []
    d = path.parent
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir(mode=dir_mode, exist_ok=True)
        os.chmod(d, dir_mode)  # mkdir's mode is masked by the umask; say exactly what was configured
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, file_mode)
        try:
            os.fchmod(fd, file_mode)
        finally:
            os.close(fd)


class AuditLog:
    """Appends entries from any thread; a daemon thread writes them in small batches.

    The queue between the two is bounded (``max_queue``): when the disk is slower than the traffic,
    the OLDEST waiting entry is dropped (counted in ``dropped`` and via ``on_drop``, exported as
    ``pearl_audit_dropped_total``) so memory stays bounded and requests never wait on the disk.
    """

    def __init__(self, path: str | Path, *, store_text: bool = False, max_queue: int = 10_000,
                 on_drop: Callable[[], Any] | None = None, file_mode: int = 0o600,
                 dir_mode: int = 0o700) -> None:
        self.path = Path(path).expanduser()
        self.store_text = store_text
        try:
            create_private(self.path, file_mode=file_mode, dir_mode=dir_mode)
        except OSError as exc:
            raise PearlError(f"{self.path}: cannot create audit database ({exc.strerror or exc})") from None
        try:
            _connect(self.path).close()
        except sqlite3.Error as exc:
            raise PearlError(f"{self.path}: cannot open audit database ({exc})") from None
        self._q: queue.Queue[AuditEntry | None] = queue.Queue(maxsize=max(1, max_queue))
        self._put_lock = threading.Lock()
        self._on_drop = on_drop
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="pearl-audit", daemon=True)
        self._closed = False
        self.written = 0
        self.failed = 0
        self._thread.start()

    def record(self, entry: AuditEntry) -> None:
        if not self.store_text:
            entry = entry.model_copy(update={"conversation": None, "answer": None})
        if not self._closed:
            self._put(entry)

    def _put(self, item: AuditEntry | None) -> None:
        """Enqueue without blocking: a full queue loses its oldest entry instead."""
        with self._put_lock:
            while True:
                try:
                    self._q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        old = self._q.get_nowait()
                    except queue.Empty:
                        continue
                    self._q.task_done()
                    if old is None:  # never drop the stop marker
                        self._q.put_nowait(None)
                        return
                    self.dropped += 1
                    if self._on_drop is not None:
                        self._on_drop()

    def _run(self) -> None:
        conn = _connect(self.path)
        sql = f"INSERT INTO decisions ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
        while True:
            item = self._q.get()
            batch = [item]
            while len(batch) < 256:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = any(x is None for x in batch)
            rows = [_row(x) for x in batch if x is not None]
            if rows:
                try:
                    with conn:
                        conn.executemany(sql, rows)
                    self.written += len(rows)
                except sqlite3.Error:
                    self.failed += len(rows)
            for _ in batch:
                self._q.task_done()
            if stop:
                conn.close()
                return

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything recorded so far is on disk (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._put(None)
        self._thread.join(timeout=10)


def _row(e: AuditEntry) -> tuple:
    d = e.model_dump()
    d["posterior"] = json.dumps(d["posterior"]) if d["posterior"] is not None else None
    d["scores"] = json.dumps(d["scores"]) if d["scores"] is not None else None
    d["stream"] = int(d["stream"])
    d["leak_blocked"] = int(d["leak_blocked"])
    return tuple(d[c] for c in COLUMNS)


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, *, now: float | None = None) -> float:
    """'30m', '2h', '7d' (relative) or an ISO date/time (UTC when no zone) -> epoch seconds."""
    now = time.time() if now is None else now
    v = value.strip()
    if v and v[-1] in _DURATION and v[:-1].replace(".", "", 1).isdigit():
        return now - float(v[:-1]) * _DURATION[v[-1]]
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"cannot read {value!r}: use a duration like 30m, 2h, 7d or an ISO time "
                         "like 2026-11-29T10:00", field="since") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def query(path: str | Path, *, level: str | None = None, strategy: str | None = None,
          since: float | None = None, client: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Read decisions, newest first."""
    p = Path(path).expanduser()
    if not p.exists():
        raise PearlError(f"{p}: no audit database here (start `pearl serve` or pass --db)")
    where, args = [], []
    if level:
        levels = [x.strip().upper() for x in level.split(",") if x.strip()]
        bad = [x for x in levels if x not in {"R0", "R1", "R2"}]
        if bad:
            raise InputError(f"unknown level {bad[0]!r}: use R0, R1 or R2", field="level")
        where.append(f"level IN ({','.join('?' * len(levels))})")
        args.extend(levels)
    if strategy:
        where.append("strategy = ?")
        args.append(strategy)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if client:
        where.append("client = ?")
        args.append(client)
    sql = "SELECT * FROM decisions" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY ts DESC, id DESC LIMIT ?"
    args.append(int(limit))
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(sql, args).fetchall()
    except sqlite3.DatabaseError as exc:
        raise PearlError(f"{p}: not a pearl audit database ({exc})") from None
    finally:
        conn.close()
    out = []
    for r in rows:
        d = dict(r)
        for k in ("posterior", "scores"):
            if d.get(k):
                d[k] = json.loads(d[k])
        d["stream"] = bool(d["stream"])
        d["leak_blocked"] = bool(d["leak_blocked"])
        d["time"] = datetime.fromtimestamp(d["ts"], tz=UTC).isoformat(timespec="seconds")
        out.append(d)
    return out


__all__ = ["AuditEntry", "AuditLog", "conversation_hash", "parse_since", "query"]
