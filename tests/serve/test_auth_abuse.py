"""Unknown keys cannot stall the proxy: pbkdf2 runs off the event loop, a repeated bad key is
remembered, and failed authentications are rate-limited per client IP."""

from __future__ import annotations

import asyncio
import time

import httpx

from pearlpoint.serve.auth import KeyRing, hash_key
from pearlpoint.serve.config import AuthConfig, ClientKey


def _slow_ring(**kw) -> KeyRing:
    keys = [ClientKey(name=f"p{i}", hash=hash_key(f"secret-{i}", scheme="pbkdf2", iterations=200_000))
            for i in range(2)]
    return KeyRing(AuthConfig(keys=keys, **kw))


def test_unknown_key_is_checked_off_the_event_loop_and_remembered() -> None:
    ring = _slow_ring()

    async def main() -> tuple[int, float, float]:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.005)

        t = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        assert await ring.aidentify("pk-random-guess") is None
        first = time.perf_counter() - t0
        stop = True
        await t
        t1 = time.perf_counter()
        assert await ring.aidentify("pk-random-guess") is None
        return ticks, first, time.perf_counter() - t1

    ticks, first, again = asyncio.run(main())
    # the loop kept running while two pbkdf2 checks (tens of ms) ran in a thread
    assert first > 0.02 and ticks >= 3, (first, ticks)
    assert again < first / 10  # the rejected-key LRU answered without pbkdf2
    assert asyncio.run(ring.aidentify("secret-1")).name == "p1"


def test_rejected_key_cache_is_bounded() -> None:
    ring = KeyRing(AuthConfig(keys=[ClientKey(name="a", hash=hash_key("good"))], rejected_cache_size=3))
    for i in range(10):
        assert ring.identify(f"bad-{i}") is None
    assert len(ring._rejected) == 3


def test_failed_auth_is_rate_limited_per_ip() -> None:
    ring = KeyRing(AuthConfig(keys=[ClientKey(name="a", hash=hash_key("good"))], failed_auth_burst=3,
                              failed_auth_per_minute=60))
    for _ in range(3):
        assert ring.failure_wait("10.0.0.1", now=100.0) == 0
        ring.note_failure("10.0.0.1", now=100.0)
    assert ring.failure_wait("10.0.0.1", now=100.0) > 0.9
    assert ring.failure_wait("10.0.0.2", now=100.0) == 0  # another address is unaffected
    assert ring.failure_wait("10.0.0.1", now=101.1) == 0  # refills at 1/s


def test_http_429_after_repeated_bad_keys(mock_server, start_proxy) -> None:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url, auth__failed_auth_burst=3, auth__failed_auth_per_minute=1)
    chat = {"model": "pearlpoint", "messages": [{"role": "user", "content": "hi"}]}
    codes = [httpx.post(srv.base_url + "/chat/completions", json=chat,
                        headers={"Authorization": f"Bearer pk-guess-{i}"}).status_code for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    r = httpx.post(srv.base_url + "/chat/completions", json=chat, headers={"Authorization": "Bearer pk-guess-x"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    err = r.json()["error"]
    assert err["code"] == "rate_limit_exceeded" and "failed authentications" in err["message"]
    assert not up.requests
