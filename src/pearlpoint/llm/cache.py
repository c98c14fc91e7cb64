"""A persistent response cache in SQLite, keyed by model, messages, params and schema.

Only deterministic calls (temperature 0) are cached: a sampled answer is not the answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from pearlpoint.llm.base import ChatResult, GenerationParams, Message


def cache_key(model: str, messages: list[Message], params: GenerationParams,
              json_schema: dict[str, Any] | None) -> str:
    payload = {
        "model": model,
        "messages": [m.model_dump() for m in messages],
        "params": params.model_dump(),
        "schema": json_schema,
    }
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, key: str) -> ChatResult | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            result = ChatResult.model_validate_json(row[0])
        except ValueError:
            return None
        result.cached = True
        return result

    def put(self, key: str, result: ChatResult) -> None:
        value = result.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
