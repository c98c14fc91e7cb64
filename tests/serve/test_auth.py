"""Client keys (hashed at rest), per-key rate limits, admin rights, and secrets that never leave."""

from __future__ import annotations

import httpx
import openai
import pytest

from pearlpoint.serve.auth import KeyRing, hash_key, verify_key
from pearlpoint.serve.config import AuthConfig, ClientKey
from tests.serve.conftest import ADMIN_KEY, KEY, UPSTREAM_KEY

CHAT = {"model": "pearlpoint", "messages": [{"role": "user", "content": "hello there"}]}

def test_hashes_verify_and_reject() -> None:
    for scheme in ("sha256", "pbkdf2"):
        h = hash_key("secret-1", scheme=scheme)
        assert "secret-1" not in h
        assert verify_key("secret-1", h) and not verify_key("secret-2", h)
    a, b = hash_key("k", scheme="pbkdf2"), hash_key("k", scheme="pbkdf2")
    assert a != b  # salted

def test_raw_key_in_config_is_refused() -> None:
    with pytest.raises(ValueError, match="raw keys are not accepted"):
        ClientKey(name="x", hash="my-plain-key")

def test_token_bucket_refills_at_the_configured_rate() -> None:
    ring = KeyRing(AuthConfig(keys=[ClientKey(name="a", hash=hash_key("a"), rate_limit_rpm=60)], burst=2))
    client = ring.identify("a")
    assert client is not None and ring.identify("wrong") is None
    t = 1000.0
    assert ring.take(client, now=t) == 0 and ring.take(client, now=t) == 0
    wait = ring.take(client, now=t)
    assert 0.9 < wait <= 1.0  # 60 rpm = one per second
    assert ring.take(client, now=t + 1.01) == 0

def test_401_without_or_with_a_wrong_key(mock_server, start_proxy, client_for) -> None:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url)
    r = httpx.post(srv.base_url + "/chat/completions", json=CHAT)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        client_for(srv, key="pk-wrong").chat.completions.create(**CHAT)
    with pytest.raises(openai.AuthenticationError):
        client_for(srv, key="pk-wrong").models.list()
    assert not up.requests  # nothing reached the upstream
    # both hash schemes work
    assert client_for(srv, key=KEY).chat.completions.create(**CHAT).choices[0].message.content == "ok"
    assert client_for(srv, key=ADMIN_KEY).chat.completions.create(**CHAT).choices[0].message.content == "ok"
    assert "pearl_auth_failures_total 3" in httpx.get(srv.url + "/metrics").text

def test_per_key_rate_limit_is_429_and_other_keys_unaffected(mock_server, start_proxy, client_for) -> None:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url, auth={"burst": 3, "keys": [
        {"name": "slow", "hash": hash_key(KEY), "rate_limit_rpm": 6},
        {"name": "fast", "hash": hash_key(ADMIN_KEY), "rate_limit_rpm": 6000}]})
    codes = [httpx.post(srv.base_url + "/chat/completions", json=CHAT,
                        headers={"Authorization": f"Bearer {KEY}"}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = httpx.post(srv.base_url + "/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limit_exceeded" and "slow" in r.json()["error"]["message"]
    assert client_for(srv, key=ADMIN_KEY).chat.completions.create(**CHAT).choices[0].message.content == "ok"

def test_upstream_key_never_leaves(mock_server, start_proxy) -> None:
    # an upstream that (absurdly) puts our key in its answer: the proxy cuts it and keeps the answer
    # before it (long enough to count as an answer, so the guard does not replace it: see the next test)
    prefix = "Sure, here is how the setup works: the proxy forwards each request to the upstream. And my key is"
    up = mock_server(reply=f"{prefix} {UPSTREAM_KEY}, enjoy", api_key=UPSTREAM_KEY)
    srv = start_proxy(up.base_url)
    for stream in (False, True):
        r = httpx.post(srv.base_url + "/chat/completions", json={**CHAT, "stream": stream},
                       headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200
        assert UPSTREAM_KEY not in r.text and UPSTREAM_KEY not in str(r.headers)
        assert "my key is" in r.text
    for path in ("/healthz", "/metrics", "/v1/models"):
        r = httpx.get(srv.url + path, headers={"Authorization": f"Bearer {KEY}"})
        assert UPSTREAM_KEY not in r.text
    assert 'pearl_leaks_blocked_total 2' in httpx.get(srv.url + "/metrics").text
    # the upstream did receive every request (with the key it needs)
    assert up.requests and len(up.requests) == 2


def test_an_answer_that_is_only_a_leaked_key_is_replaced(mock_server, start_proxy) -> None:
    # cut at the key, next to nothing is left: with the guard on that is no answer, so the client gets
    # the guard's composed reply (never the key, never a bare "my key is" stub)
    up = mock_server(reply=f"my key is {UPSTREAM_KEY}, enjoy", api_key=UPSTREAM_KEY)
    srv = start_proxy(up.base_url)
    r = httpx.post(srv.base_url + "/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and UPSTREAM_KEY not in r.text
    body = r.json()
    text = body["choices"][0]["message"]["content"]
    assert "my key is" not in text and len(text) > 40
    assert body["pearl"]["leak_blocked"] is True and body["pearl"]["guard"]["action"] == "composed"
