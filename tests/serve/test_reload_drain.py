"""A reload never strands requests that started on the old config: the old engine and audit log are
closed only when those requests finish, and a closed engine answers 503 at once instead of hanging."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import yaml

from pearlpoint.llm import Message
from pearlpoint.serve.config import load_config
from pearlpoint.serve.csa import CSAEngine, EngineClosed
from tests.serve.conftest import ADMIN_KEY, KEY, base_config

CHAT = {"model": "pearlpoint", "messages": [{"role": "user", "content": "hello"}]}


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]


def test_in_flight_request_finishes_and_is_audited_across_reload(mock_server, start_proxy, tmp_path: Path) -> None:
    up = mock_server(reply="slow ok", delay_s=1.5)
    path = tmp_path / "serve.yaml"
    cfg = base_config(tmp_path, up.base_url)
    path.write_text(yaml.safe_dump(cfg))
    srv = start_proxy(None, config_path=path)
    old_db = Path(cfg["audit"]["path"])
    result: dict = {}

    def slow_call() -> None:
        r = httpx.post(srv.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"},
                       timeout=30)
        result["status"], result["text"] = r.status_code, r.json()["choices"][0]["message"]["content"]

    t = threading.Thread(target=slow_call)
    t.start()
    deadline = time.monotonic() + 10
    while not up.requests and time.monotonic() < deadline:  # the request is now waiting on the upstream
        time.sleep(0.02)
    old_state = srv.proxy.state
    assert old_state._users == 1
    cfg["audit"]["path"] = str(tmp_path / "audit-v2.sqlite")
    path.write_text(yaml.safe_dump(cfg))
    r = httpx.post(srv.url + "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert not old_state.audit._closed  # still draining: the slow request holds it
    t.join(timeout=30)
    assert result == {"status": 200, "text": "slow ok"}
    deadline = time.monotonic() + 10
    while not old_state.audit._closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert old_state.audit._closed and old_state._users == 0
    assert _rows(old_db) == 1  # the in-flight request's row was written, not dropped


def test_closed_engine_fails_fast(csa_engine) -> None:
    engine = CSAEngine(load_config(None), assessor=csa_engine.assessor)
    engine.close()

    async def go() -> None:
        await asyncio.wait_for(engine.decide([Message(role="user", content="hi")]), timeout=5)

    t0 = time.perf_counter()
    try:
        asyncio.run(go())
    except EngineClosed:
        pass
    else:  # pragma: no cover
        raise AssertionError("decide on a closed engine must raise")
    assert time.perf_counter() - t0 < 1.0


def test_closed_engine_is_a_clean_503(mock_server, start_proxy, csa_engine) -> None:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url)
    engine = CSAEngine(load_config(None), assessor=csa_engine.assessor)
    engine.close()
    srv.proxy.state.engine = engine  # what a request holding a retired state sees after the grace period
    r = httpx.post(srv.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"},
                   timeout=10)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "service_unavailable"
    assert not up.requests


def test_retire_closes_after_grace_when_a_request_never_ends(start_proxy, tmp_path: Path) -> None:
    srv = start_proxy(None)
    st = srv.proxy.state
    closed = threading.Event()
    st.acquire()  # a request that never finishes
    st.retire(closed.set, grace_s=0.2)
    assert not closed.is_set()
    assert closed.wait(5)
    st.release()
