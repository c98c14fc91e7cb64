"""Shared fixtures: the real embedded model, a real loopback server, the shared datasets."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Tests get their own response cache and never read the user's config.
_TMP = Path(tempfile.mkdtemp(prefix="pearl-tests-"))
os.environ.setdefault("PEARL_CACHE_PATH", str(_TMP / "llm-cache.sqlite"))
os.environ.pop("PEARL_CONFIG", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: the project must not need it, only its tests may use it."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_model() -> Any:
    """The real SmolLM2-135M-Instruct in llama.cpp, shared by the session."""
    from pearlpoint.llm import get_model

    return get_model("embedded")


@pytest.fixture
def mock_server() -> Iterator[Callable[..., Any]]:
    """Factory for real OpenAI-compatible servers on loopback; all are stopped after the test."""
    from pearlpoint.llm.mockserver import MockServer

    started: list[MockServer] = []

    def make(**kw: Any) -> MockServer:
        srv = MockServer(**kw).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
