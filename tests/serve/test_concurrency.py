"""Concurrent requests: streams never mix, and slow work never blocks the event loop."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai

from tests.serve.conftest import KEY


def tagged_reply(messages: list[dict]) -> str:
    tag = messages[-1]["content"].split()[-1]
    return " ".join([tag] * 40)


async def test_concurrent_streams_never_mix(mock_server, start_proxy) -> None:
    up = mock_server(delay_s=0.05, reply=tagged_reply)
    # the guard off: its window would (rightly) replace a 40-fold repetition; tests/serve/test_guard.py
    # runs concurrent guarded streams
    srv = start_proxy(up.base_url, auth__burst=1000, csa={"guard": False})
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0, timeout=120)

    async def one(i: int) -> tuple[str, str]:
        tag = f"tag{i:03d}"
        stream = await client.chat.completions.create(
            model="pearlpoint", stream=True, messages=[{"role": "user", "content": f"please echo {tag}"}])
        parts = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return tag, "".join(parts)

    results = await asyncio.gather(*(one(i) for i in range(24)))
    for tag, text in results:
        assert text.split() == [tag] * 40, (tag, text[:80])
    await client.close()


async def test_no_head_of_line_blocking(mock_server, start_proxy) -> None:
    """While requests wait on a slow upstream, health checks and fast requests still answer at once."""
    slow = mock_server(delay_s=3.0, reply="slow")
    srv = start_proxy(slow.base_url, upstream__timeout_s=30, auth__burst=1000)
    async with httpx.AsyncClient(timeout=60) as http:
        headers = {"Authorization": f"Bearer {KEY}"}
        slow_reqs = [asyncio.create_task(http.post(srv.base_url + "/chat/completions", headers=headers, json={
            "model": "pearlpoint", "messages": [{"role": "user", "content": f"question {i}"}]})) for i in range(20)]
        await asyncio.sleep(0.5)
        t = time.perf_counter()
        for _ in range(5):
            assert (await http.get(srv.url + "/healthz")).status_code == 200
        health_s = (time.perf_counter() - t) / 5
        done = await asyncio.gather(*slow_reqs)
    assert all(r.status_code == 200 for r in done)
    assert health_s < 0.5, f"healthz took {health_s:.3f}s while 20 requests were in flight"


def test_client_leaving_mid_stream_is_cleaned_up(mock_server, start_proxy) -> None:
    up = mock_server(reply=" ".join(f"word{i}" for i in range(20000)))
    srv = start_proxy(up.base_url)
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", srv.base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                         json={"model": "pearlpoint", "stream": True,
                               "messages": [{"role": "user", "content": "Write a very long list."}]}) as r:
            assert r.status_code == 200
            next(r.iter_lines())  # read one event, then hang up
    deadline = time.monotonic() + 20
    while "pearl_inflight_requests 0" not in httpx.get(srv.url + "/metrics").text:
        assert time.monotonic() < deadline, "an abandoned stream was never cleaned up"
        time.sleep(0.1)
    srv.proxy.state.audit.flush()
    import sqlite3

    rows = sqlite3.connect(srv.proxy.state.audit.path).execute("SELECT status, error FROM decisions").fetchall()
    assert rows and rows[0][0] in (200, 499), rows
    assert httpx.get(srv.url + "/healthz").status_code == 200
