"""Client keys (hashed at rest, compared in constant time) and per-key rate limits.

Keys are never stored in clear text: the config holds ``sha256:<hex>`` (fast, fine for long random
keys) or ``pbkdf2_sha256$<iter>$<salt>$<hex>`` (slow, for keys a person chose). A verified key is
remembered by its sha256 so pbkdf2 is paid once per key per process, not once per request.

An unknown key is the expensive case (it is checked against every pbkdf2 hash), so
:meth:`KeyRing.aidentify` does that check in a worker thread (the event loop keeps serving), remembers
recently rejected keys in a bounded LRU (a repeated bad key costs one dict lookup), and
:meth:`KeyRing.take_failure` rate-limits failed authentications per client IP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
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
        self._rejected: OrderedDict[str, None] = OrderedDict()  # sha256(key) of recent wrong keys (LRU)
        self._ip_failures: OrderedDict[str, _Bucket] = OrderedDict()  # client IP -> failed-auth bucket
        self._lock = threading.Lock()
        self._slow = any(not k.hash.startswith("sha256:") for k in cfg.keys)

    @property
    def open(self) -> bool:
        """No keys configured and anonymous access allowed: every request is 'anonymous'."""
        return not self.cfg.keys and self.cfg.allow_anonymous

    def identify(self, key: str | None) -> ClientKey | None:
        """Synchronous lookup (may run pbkdf2 in the calling thread: not for the event loop)."""
        done, client, fast = self._lookup_cached(key)
        return client if done else self._verify_slow(key or "", fast)

    async def aidentify(self, key: str | None) -> ClientKey | None:
        """Like :meth:`identify`, but a full check against pbkdf2 hashes runs in a worker thread."""
        done, client, fast = self._lookup_cached(key)
        if done:
            return client
        if not self._slow:  # sha256 only: microseconds, no thread hop needed
            return self._verify_slow(key or "", fast)
        return await asyncio.to_thread(self._verify_slow, key or "", fast)

    def _lookup_cached(self, key: str | None) -> tuple[bool, ClientKey | None, str]:
        """(decided, client, sha256 of the key): decided when the answer needs no hashing of stored keys."""
        if self.open:
            return True, ClientKey(name="anonymous", hash="sha256:" + "0" * 64), ""
        if not key:
            return True, None, ""
        fast = hashlib.sha256(key.encode()).hexdigest()
        hit = self._verified.get(fast)
        if hit is not None:
            return True, hit, fast
        with self._lock:
            if fast in self._rejected:
                self._rejected.move_to_end(fast)
                return True, None, fast
        return False, None, fast

    def _verify_slow(self, key: str, fast: str) -> ClientKey | None:
        for client in self.cfg.keys:
            if verify_key(key, client.hash):
                with self._lock:
                    self._verified[fast] = client
                return client
        size = self.cfg.rejected_cache_size
        if size > 0:
            with self._lock:
                self._rejected[fast] = None
                self._rejected.move_to_end(fast)
                while len(self._rejected) > size:
                    self._rejected.popitem(last=False)
        return None

    def failure_wait(self, ip: str, now: float | None = None) -> float:
        """Seconds this IP must wait before another key is checked (0 when it still has failures left)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            b = self._ip_failures.get(ip)
            if b is None:
                return 0.0
            rate = self.cfg.failed_auth_per_minute / 60.0
            tokens = min(float(self.cfg.failed_auth_burst), b.tokens + (now - b.updated) * rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def note_failure(self, ip: str, now: float | None = None) -> None:
        """Spend one failed authentication from this IP's allowance."""
        now = time.monotonic() if now is None else now
        rate = self.cfg.failed_auth_per_minute / 60.0
        cap = float(self.cfg.failed_auth_burst)
        with self._lock:
            b = self._ip_failures.get(ip)
            if b is None:
                b = self._ip_failures[ip] = _Bucket(tokens=cap, updated=now)
            b.tokens = max(0.0, min(cap, b.tokens + (now - b.updated) * rate) - 1.0)
            b.updated = now
            self._ip_failures.move_to_end(ip)
            while len(self._ip_failures) > 65_536:  # bounded: an address flood cannot grow memory
                self._ip_failures.popitem(last=False)

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
            for ip, bucket in old._ip_failures.items():
                self._ip_failures[ip] = _Bucket(bucket.tokens, bucket.updated)
