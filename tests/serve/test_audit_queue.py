"""The audit queue is bounded: a stalled disk drops the oldest entries (counted), never grows memory
or blocks requests; what was queued is written once the disk is back."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pearlpoint.serve.audit import AuditEntry, AuditLog
from pearlpoint.serve.metrics import ServeMetrics


def test_stalled_disk_drops_oldest_and_counts(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    metrics = ServeMetrics()
    log = AuditLog(db, max_queue=5, on_drop=metrics.audit_dropped.inc)
    blocker = sqlite3.connect(db, timeout=30)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer thread now waits on the database, like a stuck disk
    try:
        t0 = time.perf_counter()
        for i in range(50):
            log.record(AuditEntry(request_id=f"r{i:02d}", prompt_hash="sha256:x"))
        assert time.perf_counter() - t0 < 1.0  # recording never waited for the disk
        assert log._q.qsize() <= 5
        assert log.dropped > 0
    finally:
        blocker.rollback()
        blocker.close()
    log.close()
    assert log.written + log.dropped == 50
    assert f"pearl_audit_dropped_total {log.dropped}" in metrics.render()
    with sqlite3.connect(db) as c:
        ids = [r[0] for r in c.execute("SELECT request_id FROM decisions ORDER BY request_id")]
    assert "r49" in ids  # the newest survive; the oldest waiting ones were dropped
    assert len(ids) == log.written
