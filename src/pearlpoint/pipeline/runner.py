"""The async batch loop: stream prompts, answer them with bounded concurrency, write as they finish.

One producer reads the input lazily into a bounded queue; ``concurrency`` workers take rows from it
and await the responder (normally :func:`pearlpoint.lingo.respond_async`); each finished record is
appended and fsynced immediately. At most ``2 * concurrency`` rows are held in memory, whatever the
input size. A failed row is written as a record with ``error`` set (so the batch goes on and the
failure is visible); a spent budget stops the run cleanly and leaves the unfinished rows for a rerun.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pearlpoint.errors import BudgetExceeded
from pearlpoint.pipeline.inputs import BadRow, PromptReader, PromptRow
from pearlpoint.pipeline.store import RECORDS_FILE, RecordWriter, RunState

#: Key a responder may set on a record to route it to ``RUN_DIR/<shard>``; removed before writing.
SHARD_KEY = "_shard"

Responder = Callable[[PromptRow], Awaitable[dict[str, Any]]]


class ProgressSink(Protocol):
    def started(self, total: int | None) -> None: ...
    def advanced(self, ok: bool) -> None: ...
    def bad_row(self, bad: BadRow) -> None: ...


class NullProgress:
    def started(self, total: int | None) -> None:
        return None

    def advanced(self, ok: bool) -> None:
        return None

    def bad_row(self, bad: BadRow) -> None:
        return None


@dataclass
class BatchReport:
    """What one invocation did; merged into run.json."""

    rows_read: int = 0
    prompts: int = 0
    skipped_done: int = 0
    skipped_failed: int = 0
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    not_started_budget: int = 0
    stopped: str | None = None  # reason the run stopped early, e.g. the budget
    bad_counts: dict[str, int] = field(default_factory=dict)
    bad_examples: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.attempted / self.wall_s if self.wall_s > 0 else 0.0


def latest_user_text(query: str | list[dict[str, str]]) -> str:
    if isinstance(query, str):
        return query
    return next((m["content"] for m in reversed(query) if m["role"] == "user"), "")


def failure_record(row: PromptRow, exc: BaseException) -> dict[str, Any]:
    """A ``Record``-shaped line for a row whose responder raised: the query and the error, no iterates."""
    return {"id": row.id, "query": latest_user_text(row.query),
            "messages": row.query if isinstance(row.query, list) else None,
            "iterates": [], "chosen_index": None, "usage": {},
            "error": f"{type(exc).__name__}: {exc}"}


def add_usage(total: dict[str, int], record: dict[str, Any]) -> None:
    usage = record.get("usage") or {}
    if not isinstance(usage, dict):
        return
    for key in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "repairs", "retries", "errors"):
        value = usage.get(key)
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + int(value)


def _is_failed_result(record: dict[str, Any]) -> bool:
    return bool(record.get("error")) or not record.get("iterates")


async def answer_row(responder: Responder, row: PromptRow) -> dict[str, Any]:
    """Run the responder on one row; any failure but a spent budget becomes a failure record."""
    try:
        record = await responder(row)
    except BudgetExceeded:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad row or answer must never kill the batch
        return failure_record(row, exc)
    if not isinstance(record, dict):
        record = record.model_dump(mode="json")  # a pydantic Record
    record["id"] = row.id  # the pipeline's id is the one resume relies on
    return record


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def run_batch(reader: PromptReader, run_dir: str | Path, responder: Responder, *,
                    concurrency: int = 8, retry_failed: bool = False,
                    progress: ProgressSink | None = None, total: int | None = None,
                    records_file: str = RECORDS_FILE, fsync: bool = True) -> BatchReport:
    """Answer every prompt of ``reader`` not already done in ``run_dir``; see the module doc."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or NullProgress()
    concurrency = max(1, int(concurrency))
    state = RunState.load(run_dir)
    report = BatchReport()
    queue: asyncio.Queue[PromptRow | None] = asyncio.Queue(maxsize=2 * concurrency)
    stop = asyncio.Event()
    writers: dict[str, RecordWriter] = {records_file: RecordWriter(run_dir / records_file, fsync=fsync)}

    def write(record: dict[str, Any]) -> None:
        # A distributed responder names the shard of the worker that answered (records-<w>.jsonl).
        shard = record.pop(SHARD_KEY, None) or records_file
        if shard not in writers:
            writers[shard] = RecordWriter(run_dir / shard, fsync=fsync)
        writers[shard].write(record)
    started = time.perf_counter()
    progress.started(total)

    async def produce() -> None:
        try:
            for item in reader:
                if stop.is_set():
                    break
                if isinstance(item, BadRow):
                    progress.bad_row(item)
                    continue
                if item.id in state.done:
                    report.skipped_done += 1
                    progress.advanced(True)
                    continue
                if item.id in state.failed and not retry_failed:
                    report.skipped_failed += 1
                    progress.advanced(False)
                    continue
                await queue.put(item)
                await asyncio.sleep(0)  # let workers start while a fast reader fills the queue
        finally:
            for _ in range(concurrency):
                await queue.put(None)

    async def work() -> None:
        while True:
            row = await queue.get()
            if row is None:
                return
            if stop.is_set():
                report.not_started_budget += 1
                continue
            report.attempted += 1
            try:
                record = await answer_row(responder, row)
            except BudgetExceeded as exc:
                report.attempted -= 1
                report.not_started_budget += 1
                report.stopped = str(exc)
                stop.set()
                continue
            write(record)
            add_usage(report.usage, record)
            ok = not _is_failed_result(record)
            if ok:
                report.succeeded += 1
            else:
                report.failed += 1
            progress.advanced(ok)

    try:
        try:
            async with asyncio.TaskGroup() as group:  # an unexpected crash cancels the siblings
                group.create_task(produce())
                for _ in range(concurrency):
                    group.create_task(work())
        except BaseExceptionGroup as group_error:
            raise _first_leaf(group_error) from None  # e.g. an InputError for an unreadable source
    finally:
        for w in writers.values():
            w.close()
        report.wall_s = time.perf_counter() - started
        report.rows_read = reader.rows_read
        report.prompts = reader.prompts
        report.bad_counts = dict(reader.bad_counts)
        report.bad_examples = [b.to_dict() for b in reader.bad[:200]]
    return report
