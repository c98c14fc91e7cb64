"""Optional Lingo-BP refinement at serving time: on for the configured levels only, streamed after
the final iterate is chosen, and never a reason to fail a request."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.serve.conftest import KEY

RISKY = "Which household chemicals are dangerous to mix, and what happens if you do?"


def test_refine_failure_falls_back_to_the_steered_draft(mock_server, start_proxy, client_for) -> None:
    # a judge that never answers in JSON: refinement fails, the user still gets the steered answer
    up = mock_server(reply="Plain prose, no JSON here.")
    srv = start_proxy(up.base_url, refine={"steps": 1, "levels": ["R0", "R1", "R2"]})
    resp = client_for(srv).chat.completions.create(model="pearlpoint", messages=[{"role": "user", "content": RISKY}])
    assert resp.choices[0].message.content == "Plain prose, no JSON here."
    pearl = resp.model_extra["pearl"]
    assert pearl["refine_steps"] == 0 and pearl["refine_error"]


def test_refine_is_off_for_levels_not_listed(mock_server, start_proxy, client_for) -> None:
    up = mock_server(reply="Hello!")
    srv = start_proxy(up.base_url, refine={"steps": 2, "levels": ["R2"]})
    resp = client_for(srv).chat.completions.create(model="pearlpoint",
                                                   messages=[{"role": "user", "content": "Say hello."}])
    assert resp.model_extra["pearl"]["refine_steps"] == 0 and "refine_error" not in resp.model_extra["pearl"]
    assert len(up.requests) == 1  # one upstream call: no judge, no backward pass


@pytest.mark.slow
def test_refine_with_the_embedded_model_streamed(start_proxy) -> None:
    """One Lingo-BP step with the embedded model as generator and judge, streamed after the chosen
    iterate is known (the final chunk carries the refine summary)."""
    srv = start_proxy(None, refine={"steps": 1, "levels": ["R0", "R1", "R2"]}, limits={"max_tokens_cap": 48})
    r = httpx.post(srv.base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=1200,
                   json={"model": "pearlpoint", "messages": [{"role": "user", "content": RISKY}], "max_tokens": 48,
                         "temperature": 0, "stream": True})
    assert r.status_code == 200
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.strip()
    first, last = chunks[0]["pearl"], chunks[-1]["pearl"]
    assert first["level"] in ("R0", "R1", "R2")
    assert "refine_error" not in first, first
    assert last["refine_steps"] == 1 and last["scores"]["iterates"] >= 1
    assert r.text.rstrip().endswith("data: [DONE]")
