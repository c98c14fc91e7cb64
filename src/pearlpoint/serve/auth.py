"""Client keys (hashed at rest, compared in constant time) and per-key rate limits.

Keys are never stored in clear text: the config holds ``sha256:<hex>`` (fast, fine for long random
keys) or ``pbkdf2_sha256$<iter>$<salt>$<hex>`` (slow, for keys a person chose). A verified key is
remembered by its sha256 so pbkdf2 is paid once per key per process, not once per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from pearlpoint.serve.config import AuthConfig, ClientKey


def hash_key(key: str, *, scheme: str = "sha256", iterations: int = 200_000) -> str:
    """Hash a client key for the config file."""
    if scheme == "sha256":
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    if scheme == "pbkdf2":
        salt = secrets.token_hex(16)
        digest = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), iterations).hex()
        return f"pbkdf2_sha256${iterations}${salt}${digest}"
    raise ValueError(f"unknown scheme {scheme!r}: use 'sha256' or 'pbkdf2'")


def verify_key(key: str, stored: str) -> bool:
    if stored.startswith("sha256:"):
        digest = hashlib.sha256(key.encode()).hexdigest()
        return hmac.compare_digest(digest, stored[len("sha256:"):])
    if stored.startswith("pbkdf2_sha256$"):
        _, iters, salt, want = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), int(iters)).hex()
        return hmac.compare_digest(got, want)
    return False


def generate_key() -> str:
    return "pk-" + secrets.token_urlsafe(32)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyRing:
    """Looks up the client behind a bearer key and applies its rate limit (token bucket)."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self._verified: dict[str, ClientKey] = {}   # sha256(key) -> client, after one full check
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """No keys configured and anonymous access allowed: every request is 'anonymous'."""
        return not self.cfg.keys and self.cfg.allow_anonymous

    def identify(self, key: str | None) -> ClientKey | None:
        if self.open:
            return ClientKey(name="anonymous", hash="sha256:" + "0" * 64)
        if not key:
            return None
        fast = hashlib.sha256(key.encode()).hexdigest()
        hit = self._verified.get(fast)
        if hit is not None:
            return hit
        for client in self.cfg.keys:
            if verify_key(key, client.hash):
                with self._lock:
                    self._verified[fast] = client
                return client
        return None

    def take(self, client: ClientKey, now: float | None = None) -> float:
        """Spend one request. Returns 0 when allowed, else the seconds to wait before retrying."""
        rpm = client.rate_limit_rpm or self.cfg.default_rpm
        rate = rpm / 60.0
        cap = float(max(self.cfg.burst, 1))
        now = time.monotonic() if now is None else now
        with self._lock:
            b = self._buckets.get(client.name)
            if b is None:
                b = self._buckets[client.name] = _Bucket(tokens=cap, updated=now)
            b.tokens = min(cap, b.tokens + (now - b.updated) * rate)
            b.updated = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / rate

    def carry_buckets_from(self, old: KeyRing) -> None:
        """Keep rate-limit state across a reload so a reload is not a way around the limit."""
        names = {k.name for k in self.cfg.keys} | ({"anonymous"} if self.open else set())
        with old._lock:
            for name, bucket in old._buckets.items():
                if name in names:
                    self._buckets[name] = _Bucket(bucket.tokens, bucket.updated)
