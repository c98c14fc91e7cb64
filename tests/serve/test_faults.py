"""Upstream down, slow or broken: a clean 502/504 with an OpenAI-style body, and the proxy stays up."""

from __future__ import annotations

import httpx
import openai
import pytest

from pearlpoint.llm.mockserver import free_port
from tests.serve.conftest import KEY, UPSTREAM_KEY

CHAT = {"model": "pearlpoint", "messages": [{"role": "user", "content": "Tell me about tides."}]}
AUTH = {"Authorization": f"Bearer {KEY}"}


def _assert_error_body(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["type"] and err["message"]
    assert UPSTREAM_KEY not in r.text and "127.0.0.1" not in err["message"]  # no upstream details leak
    return err


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_down_is_502_and_server_stays_up(start_proxy, stream: bool) -> None:
    srv = start_proxy(f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    r = httpx.post(srv.base_url + "/chat/completions", headers=AUTH, json={**CHAT, "stream": stream}, timeout=30)
    _assert_error_body(r, 502, "upstream_unreachable")
    assert httpx.get(srv.url + "/healthz").status_code == 200
    metrics = httpx.get(srv.url + "/metrics").text
    assert 'pearl_upstream_errors_total{kind="unreachable"} 1' in metrics


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_hang_is_504(mock_server, start_proxy, stream: bool) -> None:
    up = mock_server(hang=True)
    srv = start_proxy(up.base_url, upstream__timeout_s=1.0)
    r = httpx.post(srv.base_url + "/chat/completions", headers=AUTH, json={**CHAT, "stream": stream}, timeout=30)
    err = _assert_error_body(r, 504, "upstream_timeout")
    assert "1 s" in err["message"]
    assert httpx.get(srv.url + "/healthz").status_code == 200
    up._server.force_exit = True  # its handler sleeps for an hour; do not wait for it at teardown


def test_upstream_garbage_is_502(mock_server, start_proxy) -> None:
    up = mock_server(garbage=True)
    srv = start_proxy(up.base_url)
    r = httpx.post(srv.base_url + "/chat/completions", headers=AUTH, json=CHAT, timeout=30)
    _assert_error_body(r, 502, "upstream_bad_response")


def test_upstream_500_then_recovery(mock_server, start_proxy, client_for) -> None:
    up = mock_server(fail_statuses=[500, 503], reply="recovered")
    srv = start_proxy(up.base_url)
    c = client_for(srv)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as ei:
            c.chat.completions.create(**CHAT)
        assert ei.value.status_code == 502
        assert ei.value.body["code"] == "upstream_bad_response"
    assert c.chat.completions.create(**CHAT).choices[0].message.content == "recovered"


def test_upstream_rejects_our_key_is_502_without_the_key(mock_server, start_proxy) -> None:
    up = mock_server(api_key="sk-some-other-key", reply="x")
    srv = start_proxy(up.base_url)
    r = httpx.post(srv.base_url + "/chat/completions", headers=AUTH, json=CHAT, timeout=30)
    _assert_error_body(r, 502, "upstream_bad_response")
