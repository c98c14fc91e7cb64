"""Reading and writing data files row by row, with errors that name the file, line and field.

Readers stream (the input is never loaded whole) and yield a ``Row`` for every line, good or bad: a
batch reports a bad row and goes on. Writers append one JSON line at a time with flush + fsync, and
readers of our own output tolerate a torn last line left by a crash.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pearlpoint.errors import InputError

SUPPORTED = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet")
URL_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pearlpoint" / "downloads"


@dataclass
class Row:
    line: int  # 1-based line (JSONL/CSV) or row number (Parquet, HF)
    data: dict[str, Any] | None
    error: InputError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def fetch_url(url: str, cache_dir: Path = URL_CACHE) -> Path:
    """Download ``url`` once into the cache and return the local path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "data"
    target = cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"
    if target.exists():
        return target
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except OSError as exc:
        raise InputError(f"cannot download: {exc}", path=url) from exc
    tmp.replace(target)
    return target


def resolve(source: str | Path) -> Path | str:
    """A local path for files and URLs; ``hf:NAME[:SPLIT]`` strings stay as they are."""
    s = str(source)
    if s.startswith(("http://", "https://")):
        return fetch_url(s)
    if s.startswith("hf:"):
        return s
    p = Path(s).expanduser()
    if not p.exists():
        raise InputError("file not found", path=p)
    return p


def _check_field(row: Row, field: str | None, path: Any) -> Row:
    if row.ok and field is not None and row.data is not None:
        value = row.data.get(field)
        if value is None:
            row.error = InputError(f"missing field (row has: {', '.join(list(row.data)[:12]) or 'nothing'})",
                                   path=path, line=row.line, field=field)
        elif not isinstance(value, str):
            row.error = InputError(f"expected text, got {type(value).__name__}", path=path, line=row.line,
                                   field=field)
        elif not value.strip():
            row.error = InputError("empty text", path=path, line=row.line, field=field)
    return row


def _iter_jsonl(path: Path) -> Iterator[Row]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Row(n, None, InputError(f"not UTF-8 (byte {exc.start})", path=path, line=n))
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(n, None, InputError(f"not valid JSON: {exc.msg} at column {exc.colno}",
                                              path=path, line=n))
                continue
            if not isinstance(data, dict):
                yield Row(n, None, InputError(f"expected a JSON object, got {type(data).__name__}",
                                              path=path, line=n))
                continue
            yield Row(n, data)


def _iter_json_array(path: Path) -> Iterator[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Maybe it is JSON Lines with a .json name.
        yield from _iter_jsonl(path)
        return
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    for n, item in enumerate(data, start=1):
        if isinstance(item, dict):
            yield Row(n, item)
        else:
            yield Row(n, None, InputError(f"expected a JSON object, got {type(item).__name__}", path=path, line=n))


def _iter_csv(path: Path, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, newline="", encoding="utf-8", errors="strict") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except (UnicodeDecodeError, csv.Error) as exc:
            yield Row(1, None, InputError(f"unreadable header: {exc}", path=path, line=1))
            return
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                yield Row(reader.line_num + 1, None, InputError(f"not UTF-8: {exc.reason}", path=path,
                                                                line=reader.line_num + 1))
                return  # the decoder cannot resynchronise inside a text stream
            except csv.Error as exc:
                yield Row(reader.line_num, None, InputError(f"bad CSV: {exc}", path=path, line=reader.line_num))
                continue
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield Row(line, None, InputError(
                    f"ragged row: {len(values)} values for {len(header)} columns", path=path, line=line))
                continue
            yield Row(line, dict(zip(header, values, strict=True)))


def _iter_parquet(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError("reading Parquet needs pyarrow: pip install 'pearlpoint[data]'", path=path) from exc
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            n += 1
            yield Row(n, rec)


def _iter_hf(spec: str) -> Iterator[Row]:
    try:
        import datasets
    except ImportError as exc:
        raise InputError("Hugging Face datasets need 'datasets': pip install 'pearlpoint[data]'", path=spec) from exc
    parts = spec[3:].split(":")
    name, split = parts[0], (parts[1] if len(parts) > 1 else "train")
    try:
        ds = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as exc:  # hub errors come in many types
        raise InputError(f"cannot load dataset: {exc}", path=spec) from exc
    for n, rec in enumerate(ds, start=1):
        yield Row(n, dict(rec))


def iter_jsonl_strict(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, object) for every row of a JSONL file, stopping at the first bad row with an InputError that
    names the file and line: for training data, where a bad row is a bug to fix, not a row to skip."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", path=p)
    for row in _iter_jsonl(p):
        if row.error is not None:
            raise row.error
        assert row.data is not None
        yield row.line, row.data


def iter_rows(source: str | Path, field: str | None = None) -> Iterator[Row]:
    """Yield every row of a JSONL/JSON/CSV/TSV/Parquet file, URL or ``hf:`` dataset.

    Rows that cannot be read, or lack ``field`` (missing, not text, empty), come with ``error`` set.
    Raises InputError only when the source itself cannot be opened.
    """
    resolved = resolve(source)
    if isinstance(resolved, str):
        rows: Iterator[Row] = _iter_hf(resolved)
        path: Any = resolved
    else:
        path = resolved
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            rows = _iter_jsonl(path)
        elif suffix == ".json":
            rows = _iter_json_array(path)
        elif suffix == ".csv":
            rows = _iter_csv(path, ",")
        elif suffix == ".tsv":
            rows = _iter_csv(path, "\t")
        elif suffix == ".parquet":
            rows = _iter_parquet(path)
        else:
            raise InputError(f"unsupported file type '{suffix}' (use one of {', '.join(SUPPORTED)})", path=path)
    for row in rows:
        yield _check_field(row, field, path)


def repair_torn_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline) off ``path``; returns the bytes removed.

    A record is only complete once its newline is on disk, so anything after the last newline
    is a write that a crash interrupted; the row it belonged to is simply redone.
    """
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # walk back to the last newline in blocks
        pos = size
        block = 65536
        keep = 0
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


class AppendWriter:
    """Append JSON lines durably: each line is written whole, flushed and fsynced."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._fh = open(self.path, "ab")
        self._fsync = fsync

    def write(self, obj: Any) -> None:
        if hasattr(obj, "model_dump_json"):
            line = obj.model_dump_json()
        else:
            line = json.dumps(obj, ensure_ascii=False, default=str)
        self._fh.write(line.encode("utf-8") + b"\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> AppendWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl_tolerant(path: str | Path) -> Iterator[dict[str, Any]]:
    """Our own JSONL output: skip a torn or corrupt line instead of failing the whole read."""
    p = Path(path)
    if not p.exists():
        return
    with open(p, "rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(obj, dict):
                yield obj


def count_lines(source: object) -> int | None:
    """Progress total for a line-based local file (one cheap pass); None when unknown (URL, Parquet...)."""
    p = Path(str(source))
    if p.suffix.lower() not in (".jsonl", ".ndjson", ".csv", ".tsv") or not p.is_file():
        return None
    try:
        with open(p, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return None


def lines_done(out: str | Path) -> tuple[set[int], int]:
    """For a resumable row-by-row command: the input lines already in ``out`` (each written row carries
    ``_line``) and how many rows ``out`` holds in all, so a caller can tell a foreign file from its own."""
    done: set[int] = set()
    rows = 0
    for r in read_jsonl_tolerant(out):
        rows += 1
        if isinstance(r.get("_line"), int):
            done.add(r["_line"])
    return done, rows


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to a temporary file and rename it over ``path``: readers never see half a file."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False, indent=2, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
