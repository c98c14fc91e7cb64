"""Turn an input source into a stream of prompts with stable ids, and bad rows with their reasons.

Sources: a local ``.jsonl``/``.json``/``.csv``/``.tsv``/``.parquet`` file or URL (read by
:func:`pearlpoint.io.iter_rows`, which streams and never raises mid-file), a Hugging Face dataset
name (``hf:owner/name[:split]`` or plain ``owner/name``, streamed from the hub), or a local dataset
directory. Nothing is loaded whole: memory stays flat however long the input is.

Ids: ``--id-field`` when given; otherwise the row's ``id`` column when it has one; otherwise a hash
of the prompt text. Ids must be stable across reruns, because resume skips ids already done. A
repeated id is a bad row (the first one wins), so a row can never be written twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pearlpoint.errors import InputError

_FILE_SUFFIXES = {".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".txt"}
_HF_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.\-\[\]%]+)?$")


@dataclass(frozen=True)
class PromptRow:
    """One usable input row."""

    id: str
    line: int
    query: str | list[dict[str, str]]


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, with where it is and why."""

    path: str
    line: int | None
    field: str | None
    kind: str  # missing_field | empty_prompt | duplicate_id | unreadable | bad_type
    reason: str

    def message(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        fld = f", field '{self.field}'" if self.field else ""
        return f"{where}{fld}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "field": self.field, "kind": self.kind,
                "reason": self.reason}


def prompt_id(query: str | list[dict[str, str]]) -> str:
    """A content hash: the same prompt gets the same id in every run."""
    text = query if isinstance(query, str) else json.dumps(query, ensure_ascii=False, sort_keys=True)
    return "h" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def is_hf_name(source: str) -> bool:
    if source.startswith(("hf:", "hf://")):
        return True
    if Path(source).exists() or Path(source).suffix.lower() in _FILE_SUFFIXES:
        return False  # a missing data file is reported as missing, not looked up on the hub
    return bool(_HF_NAME.match(source))


def _iter_dataset_dir(path: Path, split: str) -> Iterator[tuple[int, dict[str, Any] | None, InputError | None]]:
    """A local dataset directory (parquet/json/csv files, or ``save_to_disk`` output), streamed."""
    try:
        import datasets  # noqa: PLC0415 - heavy, optional
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError("reading a dataset directory needs `pip install 'pearlpoint[data]'`",
                         path=path) from exc
    try:
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            ds = datasets.load_dataset(str(path), split=split, streaming=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing input problem
        raise InputError(f"cannot load dataset ({type(exc).__name__}: {exc})", path=path) from exc
    for i, row in enumerate(ds, start=1):
        yield i, dict(row), None


def _iter_source(source: str, split: str) -> Iterator[tuple[int, dict[str, Any] | None, InputError | None]]:
    """(line, data, error) triples: files, URLs and ``hf:`` names via pearlpoint.io, or a dataset dir."""
    from pearlpoint.io import iter_rows  # noqa: PLC0415

    path = Path(source)
    if path.is_dir():
        yield from _iter_dataset_dir(path, split)
        return
    if is_hf_name(source):
        name = source.removeprefix("hf://").removeprefix("hf:")
        source = f"hf:{name}" if ":" in name else f"hf:{name}:{split}"
    for row in iter_rows(source):  # the field is checked here, to classify bad rows by kind
        yield row.line, row.data, row.error


def _coerce_query(value: Any) -> str | list[dict[str, str]] | None:
    """A prompt is a string or a chat (a list of {role, content}); anything else is unusable."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    ):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    return None


def _is_empty(query: str | list[dict[str, str]]) -> bool:
    if isinstance(query, str):
        return not query.strip()
    return not any(m["content"].strip() for m in query if m["role"] == "user")


class PromptReader:
    """Iterate usable prompts and collect bad rows (counted by kind) as they are met."""

    def __init__(self, source: str | Path, *, field: str = "prompt", id_field: str | None = None,
                 split: str = "train", limit: int | None = None) -> None:
        """``limit`` caps the usable prompts taken from the top of the input (bad rows don't count)."""
        self.source = str(source)
        self.field = field
        self.id_field = id_field
        self.split = split
        self.limit = limit
        self.rows_read = 0
        self.prompts = 0
        self.bad: list[BadRow] = []
        self.bad_counts: dict[str, int] = {}

    def _bad(self, line: int | None, field: str | None, kind: str, reason: str) -> BadRow:
        bad = BadRow(self.source, line, field, kind, reason)
        if len(self.bad) < 10_000:  # keep examples, not an unbounded list
            self.bad.append(bad)
        self.bad_counts[kind] = self.bad_counts.get(kind, 0) + 1
        return bad

    def __iter__(self) -> Iterator[PromptRow | BadRow]:
        seen: set[str] = set()
        for line, data, error in _iter_source(self.source, self.split):
            if self.limit is not None and self.prompts >= self.limit:
                return
            self.rows_read += 1
            if error is not None:
                yield self._bad(getattr(error, "line", None) or line, getattr(error, "field", None),
                                "unreadable", getattr(error, "reason", str(error)))
                continue
            if not isinstance(data, dict):
                yield self._bad(line, None, "bad_type", "row is not an object")
                continue
            if self.field not in data or data[self.field] is None:
                yield self._bad(line, self.field, "missing_field", f"row has no '{self.field}'")
                continue
            query = _coerce_query(data[self.field])
            if query is None:
                yield self._bad(line, self.field, "bad_type",
                                "prompt must be text or a list of {role, content} messages")
                continue
            if _is_empty(query):
                yield self._bad(line, self.field, "empty_prompt", "prompt is empty")
                continue
            rid = self._row_id(data, query)
            if rid is None:
                yield self._bad(line, self.id_field, "missing_field", f"row has no id in '{self.id_field}'")
                continue
            if rid in seen:
                yield self._bad(line, self.id_field or "id", "duplicate_id",
                                f"duplicate id {rid!r} (first occurrence kept)")
                continue
            seen.add(rid)
            self.prompts += 1
            yield PromptRow(rid, line, query)

    def _row_id(self, data: dict[str, Any], query: str | list[dict[str, str]]) -> str | None:
        if self.id_field:
            value = data.get(self.id_field)
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            return str(value)
        value = data.get("id")
        if value is not None and str(value).strip():
            return str(value)
        return prompt_id(query)
