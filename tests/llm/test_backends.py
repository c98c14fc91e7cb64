"""The model layer against real engines: the embedded model and OpenAI-compatible loopback servers."""

from __future__ import annotations

import asyncio
import time

import pytest

from pearlpoint.errors import BudgetExceeded, ConfigError, ModelError
from pearlpoint.llm import GenerationParams, Message, get_model, track_usage
from pearlpoint.llm.thinking import ThinkStreamFilter, split_thinking


def _openai(srv, **kw):  # type: ignore[no-untyped-def]
    return get_model("openai", base_url=srv.base_url, model_name="mock", cache=False, max_retries=kw.pop("max_retries", 3),
                     timeout_s=kw.pop("timeout_s", 10.0), **kw)


@pytest.mark.slow
async def test_embedded_chat_and_stream(embedded_model) -> None:  # type: ignore[no-untyped-def]
    msgs = [Message(role="user", content="Name one colour.")]
    res = await embedded_model.chat(msgs, params=GenerationParams(max_tokens=16))
    assert res.text.strip()
    assert res.usage.completion_tokens > 0
    pieces = [p async for p in embedded_model.stream(msgs, params=GenerationParams(max_tokens=16))]
    assert "".join(pieces).strip()


@pytest.mark.slow
async def test_embedded_long_input_is_fitted_not_crashed() -> None:
    # a small window keeps the prefill cheap; the fitting logic is the same at any size
    model = get_model("embedded", n_ctx=1024, cache=False)
    text = "filler words here. " * 3000 + "What is two plus two?"
    res = await model.chat([Message(role="user", content=text)], params=GenerationParams(max_tokens=8))
    assert isinstance(res.text, str)


@pytest.mark.slow
async def test_cache_hit_is_marked_and_free(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = get_model("embedded", cache_path=tmp_path / "c.sqlite")
    msgs = [Message(role="user", content="Say yes.")]
    first = await model.chat(msgs, params=GenerationParams(max_tokens=4))
    t = time.perf_counter()
    second = await model.chat(msgs, params=GenerationParams(max_tokens=4))
    assert second.cached and not first.cached
    assert second.text == first.text
    assert time.perf_counter() - t < 0.05
    snap = model.accounting.snapshot()
    assert snap["calls"] == 1 and snap["cache_hits"] == 1


async def test_openai_backend_roundtrip_and_template_injection(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(reply=lambda msgs: msgs[-1]["content"])
    model = _openai(srv)
    tricky = "Ignore {{ x }} and {response} and {% if %} <think>no</think>"
    res = await model.chat([Message(role="user", content=tricky)])
    assert srv.requests[-1]["messages"][-1]["content"] == tricky
    assert res.text == "Ignore {{ x }} and {response} and {% if %}"
    assert res.reasoning == "no"


async def test_retries_on_429_and_500_then_succeeds(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(reply="fine", fail_statuses=[429, 500, 503])
    model = _openai(srv, max_retries=4)
    model.backoff_base_s = 0.01
    res = await model.chat("hi")
    assert res.text == "fine"
    assert model.accounting.snapshot()["retries"] == 3


async def test_gives_up_with_typed_error(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(fail_statuses=[500] * 10)
    model = _openai(srv, max_retries=2)
    model.backoff_base_s = 0.01
    with pytest.raises(ModelError, match="gave up after 3 attempts"):
        await model.chat("hi")


async def test_timeout_never_hangs(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(hang=True)
    model = _openai(srv, max_retries=1, timeout_s=0.3)
    model.backoff_base_s = 0.01
    t = time.monotonic()
    with pytest.raises(ModelError):
        await model.chat("hi")
    assert time.monotonic() - t < 5


async def test_garbage_body_is_an_error_not_a_crash(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(garbage=True)
    model = _openai(srv, max_retries=0)
    with pytest.raises(ModelError):
        await model.chat("hi")


async def test_unreachable_url_names_the_url() -> None:
    from pearlpoint.llm.mockserver import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    model = get_model("openai", base_url=url, model_name="x", cache=False, max_retries=0)
    with pytest.raises(ModelError, match="cannot reach"):
        await model.chat("hi")


async def test_budget_stops_cleanly(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(reply="ok")
    model = _openai(srv, budget_calls=2)
    await model.chat("a")
    await model.chat("b")
    with pytest.raises(BudgetExceeded, match="2 of 2 calls"):
        await model.chat("c")
    assert len(srv.requests) == 2


async def test_concurrency_limit_and_usage_tracking(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(reply="ok", delay_s=0.1)
    model = _openai(srv, concurrency=4)
    with track_usage() as usage:
        t = time.monotonic()
        await asyncio.gather(*(model.chat(f"q{i}") for i in range(8)))
        elapsed = time.monotonic() - t
    assert usage.calls == 8
    assert 0.2 <= elapsed < 1.5  # two waves of four, not eight at once and not one by one


async def test_openai_stream(mock_server) -> None:  # type: ignore[no-untyped-def]
    srv = mock_server(reply="one two three")
    model = _openai(srv)
    pieces = [p async for p in model.stream("count")]
    assert "".join(pieces) == "one two three"
    assert len(pieces) == 3


def test_unknown_backend_and_missing_files() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        get_model("nope")
    with pytest.raises(ConfigError, match="base URL"):
        get_model("openai", base_url=None, cache=False)
    with pytest.raises(ConfigError, match="not found"):
        get_model("embedded", model_name="/nonexistent/model.gguf", cache=False)


def test_split_thinking_variants() -> None:
    assert split_thinking("<think>plan</think>answer") == ("answer", "plan")
    assert split_thinking("plan</think>answer") == ("answer", "plan")
    assert split_thinking("plain") == ("plain", None)
    f = ThinkStreamFilter()
    out = "".join(f.feed(x) for x in ["Hel", "lo <thi", "nk>secret</th", "ink> world"]) + f.flush()
    assert out == "Hello  world"
