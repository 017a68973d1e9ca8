"""Who may call the REST API: bearer keys with chat and admin scopes, and per-key rate limits.

With no keys configured (the local default, bound to 127.0.0.1) chat routes are open and
admin routes are refused. Once any key is configured every `/v1` route needs one: a chat
key may chat, search and send feedback; an admin key may do that and also change the
catalog, release handed-off conversations and delete a shopper's data.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Literal

from bot.settings import Settings

Scope = Literal["chat", "admin"]


class AccessDenied(Exception):
    """A request without the right key, or over its rate; `status` is the HTTP code."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Access:
    def __init__(self, settings: Settings) -> None:
        self.chat_keys = list(settings.chat_keys)
        self.admin_keys = list(settings.admin_keys)
        self.per_minute = settings.rate_limit_per_minute
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def keys_required(self) -> bool:
        return bool(self.chat_keys or self.admin_keys)

    def check(self, authorization: str | None, client: str, scope: Scope) -> str:
        """The caller's identity (a key's fingerprint, or the client address when no keys are
        configured), after checking its key and rate. Raises AccessDenied."""
        key = _bearer(authorization)
        if scope == "admin" and not self.admin_keys:
            raise AccessDenied(403, "admin routes are off: set SHOPBOT_ADMIN_KEYS to enable them")
        if not self.keys_required:
            identity = f"client:{client}"
        elif key is None:
            raise AccessDenied(401, "missing API key: send 'Authorization: Bearer <key>'")
        elif _known(key, self.admin_keys):
            identity = "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]
        elif _known(key, self.chat_keys):
            if scope == "admin":
                raise AccessDenied(403, "this key may not use admin routes")
            identity = "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]
        else:
            raise AccessDenied(401, "unknown API key")
        self._take(identity)
        return identity

    def _take(self, identity: str) -> None:
        """A token bucket per caller: `per_minute` requests a minute, bursts up to that."""
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(identity)
            if bucket is None:
                bucket = self._buckets[identity] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / rate
                raise AccessDenied(
                    429,
                    f"rate limit of {self.per_minute} requests a minute reached; "
                    f"retry in {wait:.0f} s",
                    retry_after=wait,
                )
            bucket.tokens -= 1.0


def _bearer(authorization: str | None) -> str | None:
    scheme, _, key = (authorization or "").partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def _known(key: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(key.encode(), known.encode()) for known in keys)
