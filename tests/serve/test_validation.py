"""Bad requests get 400/404/413/422 with a message that names the problem; never a traceback."""

from __future__ import annotations

import httpx
import pytest

from tests.serve.conftest import KEY

AUTH = {"Authorization": f"Bearer {KEY}"}
OK_MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def url(mock_server, start_proxy) -> str:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url, limits={"max_body_bytes": 20_000, "max_messages": 5, "max_message_chars": 2000})
    return srv.base_url + "/chat/completions"


def post(url: str, **kw) -> httpx.Response:
    return httpx.post(url, headers={**AUTH, **kw.pop("headers", {})}, timeout=30, **kw)


@pytest.mark.parametrize("body, status, needle, param", [
    (b"{not json", 400, "not valid JSON", None),
    (b"", 400, "empty", None),
    (b"[1, 2]", 400, "JSON object", None),
    (b"\xff\xfe\x00", 400, "UTF-8", None),
])
def test_malformed_bodies(url: str, body: bytes, status: int, needle: str, param) -> None:
    r = post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert needle in err["message"] and err["type"] == "invalid_request_error" and err["param"] == param


@pytest.mark.parametrize("payload, needle, param", [
    ({"messages": OK_MSG}, "missing required field 'model'", "model"),
    ({"model": "pearlpoint"}, "missing required field 'messages'", "messages"),
    ({"model": "pearlpoint", "messages": []}, "at least 1", "messages"),
    ({"model": "pearlpoint", "messages": "hello"}, "valid list", "messages"),
    ({"model": "pearlpoint", "messages": [{"role": "wizard", "content": "x"}]}, "'system'", "messages.0.role"),
    ({"model": "pearlpoint", "messages": [{"role": "user", "content": 42}]}, "messages.0.content", "messages.0.content"),
    ({"model": "pearlpoint", "messages": OK_MSG, "temperature": "hot"}, "temperature", "temperature"),
    ({"model": "pearlpoint", "messages": OK_MSG, "temperature": 7}, "less than or equal to 2", "temperature"),
    ({"model": "pearlpoint", "messages": OK_MSG, "max_tokens": 0}, "max_tokens", "max_tokens"),
    ({"model": "pearlpoint", "messages": OK_MSG, "n": 3}, "n", "n"),
    ({"model": "pearlpoint", "messages": OK_MSG, "stream": "perhaps"}, "stream", "stream"),
    ({"model": "pearlpoint", "messages": [{"role": "system", "content": "only system"}]}, "'user' message", None),
    ({"model": "pearlpoint", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "only 'text' parts", "messages.0.content"),
])
def test_wrong_fields_are_422(url: str, payload: dict, needle: str, param) -> None:
    r = post(url, json=payload)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert needle in err["message"], err
    assert err["param"] == param


def test_size_limits_are_413(url: str) -> None:
    big = {"model": "pearlpoint", "messages": [{"role": "user", "content": "x" * 30_000}]}
    r = post(url, json=big)
    assert r.status_code == 413 and "20000" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit is enforced while reading
        yield b'{"model": "pearlpoint", "messages": [{"role": "user", "content": "'
        for _ in range(50):
            yield b"y" * 1000
        yield b'"}]}'
    r = post(url, content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413

    many = {"model": "pearlpoint", "messages": [{"role": "user", "content": "hi"}] * 6}
    r = post(url, json=many)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_messages"
    long = {"model": "pearlpoint", "messages": [{"role": "user", "content": "z" * 2500}]}
    r = post(url, json=long)
    assert r.status_code == 413 and r.json()["error"]["param"] == "messages.0.content"


def test_unknown_route_and_method(url: str) -> None:
    base = url.rsplit("/chat/completions", 1)[0]
    r = httpx.get(base + "/nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == "no such route"
    r = httpx.get(url, headers=AUTH)
    assert r.status_code == 405 and "error" in r.json()


def test_max_tokens_is_capped_not_refused(mock_server, start_proxy) -> None:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url, limits={"max_tokens_cap": 64})
    r = post(srv.base_url + "/chat/completions", json={"model": "pearlpoint", "messages": OK_MSG, "max_tokens": 100_000})
    assert r.status_code == 200
    assert up.requests[-1]["max_tokens"] == 64
