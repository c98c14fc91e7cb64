"""Who may read ``/metrics``: per-level counts and auth failures are operator data.

The rule (documented in docs/serve-security.md):

1. ``metrics.key_hash`` set: the scraper must send that key (``Authorization: Bearer``), from anywhere.
2. Else ``metrics.public: true``: anyone who can reach the port may read it (the old behaviour).
3. Else a client on loopback, while the proxy is bound to a loopback address (or its bind address is
   unknown, as in tests), reads it without a key: the usual local Prometheus / curl case.
4. Else (a public bind, or a remote peer) an admin client key is required.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def is_loopback(host: str | None) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class MetricsVerdict:
    """``need`` is '' (let it through), 'metrics_key' or 'admin_key'."""

    need: str

    @property
    def open(self) -> bool:
        return self.need == ""


def metrics_access(*, key_hash: str | None, public: bool, bind_host: str | None, peer: str | None) -> MetricsVerdict:
    if key_hash:
        return MetricsVerdict("metrics_key")
    if public:
        return MetricsVerdict("")
    if is_loopback(peer) and (bind_host is None or is_loopback(bind_host)):
        return MetricsVerdict("")
    return MetricsVerdict("admin_key")
