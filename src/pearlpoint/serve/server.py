"""Running the proxy: in the foreground for ``pearl serve``, or in a background thread on a free
loopback port for tests, benches and the demo."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from pearlpoint.errors import PearlError
from pearlpoint.serve.app import Proxy
from pearlpoint.serve.config import ServeConfig

log = logging.getLogger("pearlpoint.serve")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it Nagle + delayed ACK add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PearlError(f"cannot listen on {host}:{port}: {exc.strerror} (is another server using the port?)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(proxy: Proxy, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(proxy.app, log_level=log_level, access_log=False, lifespan="on",
                          timeout_keep_alive=30, backlog=2048)


def serve_forever(proxy: Proxy, host: str = "127.0.0.1", port: int = 8088, log_level: str = "info") -> None:
    """Blocking. Ctrl-C / SIGTERM stop it; SIGHUP reloads the config."""
    import uvicorn

    sock = _bind(host, port)
    proxy.bind_host = host  # /metrics is open without a key only on a loopback bind (metrics_access.py)
    server = uvicorn.Server(_uvicorn_config(proxy, log_level))
    server.run(sockets=[sock])


class ServerThread:
    """A real uvicorn server on loopback in a daemon thread. ``with ServerThread(proxy) as s: s.base_url``."""

    def __init__(self, proxy: Proxy, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.proxy = proxy
        self.sock = _bind(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        proxy.bind_host = host
        self.server = uvicorn.Server(_uvicorn_config(proxy, log_level))
        self.thread = threading.Thread(target=self._run, name="pearl-serve", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise PearlError(f"the proxy failed to start: {self.error}")
            if time.monotonic() > deadline:
                raise PearlError("the proxy did not start in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_proxy(cfg: ServeConfig, **kw: Any) -> Proxy:
    return Proxy(cfg, **kw)
