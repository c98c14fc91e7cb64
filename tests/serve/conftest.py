"""Fixtures for the proxy: a real uvicorn server on loopback in front of a real upstream server.

The CSA engine (the embedded assessor, the policy, the payoffs) is built once per session: loading
the embedding model is the slow part, and a reload test that changes ``csa`` builds its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pearlpoint.serve.auth import hash_key

KEY = "pk-test-client-key-0001"
ADMIN_KEY = "pk-test-admin-key-0002"
UPSTREAM_KEY = "sk-upstream-secret-never-leaves-42"


@pytest.fixture(scope="session")
def csa_engine() -> Any:
    from pearlpoint.serve.config import load_config
    from pearlpoint.serve.csa import CSAEngine

    engine = CSAEngine(load_config(None))
    engine.warm_up()
    return engine


def base_config(tmp_path: Path, upstream_url: str | None, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "upstream": ({"model": "openai", "base_url": upstream_url, "model_name": "mock", "api_key": UPSTREAM_KEY,
                      "timeout_s": 5, "max_retries": 0} if upstream_url else {"model": "embedded"}),
        "models": ["pearlpoint", "pearlpoint-mini"],
        "auth": {"keys": [{"name": "alice", "hash": hash_key(KEY)},
                          {"name": "ops", "hash": hash_key(ADMIN_KEY, scheme="pbkdf2", iterations=1000),
                           "admin": True}]},
        "audit": {"path": str(tmp_path / "audit.sqlite")},
    }
    for k, v in over.items():
        section, _, field = k.partition("__")
        if field:
            cfg.setdefault(section, {})[field] = v
        else:
            cfg[section] = v
    return cfg


@pytest.fixture
def start_proxy(csa_engine: Any, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``start_proxy(upstream_url, **overrides)`` -> a started ServerThread (stopped after the test).
    Overrides use ``section__field`` names, e.g. ``limits__max_body_bytes=2048``."""
    import yaml

    from pearlpoint.serve.app import Proxy
    from pearlpoint.serve.config import load_config
    from pearlpoint.serve.server import ServerThread

    started: list[Any] = []

    def make(upstream_url: str | None, *, config_path: Path | None = None, **over: Any) -> Any:
        path = config_path or tmp_path / f"serve-{len(started)}.yaml"
        if config_path is None:
            path.write_text(yaml.safe_dump(base_config(tmp_path, upstream_url, **over)))
        proxy = Proxy(load_config(path), engine=csa_engine, warm_up=False)
        srv = ServerThread(proxy).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def client_for() -> Callable[..., Any]:
    def make(srv: Any, key: str = KEY, **kw: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=600, **kw)

    return make
