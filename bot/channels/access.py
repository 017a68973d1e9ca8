"""Who may call the bot, what they own, and how often they may call.

Three kinds of caller, each an owner of the sessions it makes (see docs/security.md):

- `key:<fingerprint>`: a store backend holding one of `chat_keys` or `admin_keys`. Once any
  key is configured every `/v1` route needs one: a chat key may chat, search and send
  feedback; an admin key may do that and also change the catalog, read and release any
  conversation and delete a shopper's data.
- `visitor:<id>`: a browser on the chat page or the widget, known by the credential the
  server gave it (`bot.channels.visitors`). Never a key: keys are secrets of the store's backends.
- an operator signed in to the console (`/admin`, `bot.channels.console`) with an admin
  key: an HttpOnly, SameSite=Strict cookie signed by the server (`OperatorSignIns`) stands
  for that key on the admin routes, for `SIGN_IN_SECONDS` and while the key is configured.
  Requests that change anything must also carry the `X-Shopbot-Console` header, which no
  other site's page can send, so the cookie cannot be ridden from elsewhere.
- `open`: a `/v1` caller when no keys are configured (local use on 127.0.0.1; a public
  address refuses to start that way unless `allow_open_access` is set).

Every caller has a token bucket: `rate_limit_per_minute` calls a minute, per key, per
visitor, or per client address for open callers and for new visitor credentials. Idle
buckets are forgotten, so the table stays small whatever the traffic. With a shared
database the buckets live there (`bot.stores.rate_buckets`): the limit is the store's, not
each worker's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Header, Request

from bot.settings import Settings
from bot.stores.rate_buckets import RateBuckets
from bot.stores.sessions import OPEN_OWNER

Scope = Literal["chat", "admin"]
MAX_BUCKETS = 100_000  # beyond this many callers, idle buckets are pruned at once
CONSOLE_COOKIE = "shopbot_operator"
CONSOLE_HEADER = "x-shopbot-console"
SIGN_IN_SECONDS = 8 * 3600
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class AccessDenied(Exception):
    """A request without the right credential, or over its rate; `status` is the HTTP code."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    """Who is calling: `owner` names the sessions they may use; `admin` may manage them all."""

    owner: str
    admin: bool = False


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller: `per_minute` calls a minute, bursts up to that. A bucket
    idle long enough to be full again is dropped: it would behave exactly like a new one.
    With `shared` buckets (a database every worker uses), the limit holds across workers."""

    def __init__(
        self, per_minute: int, clock=time.monotonic, shared: RateBuckets | None = None
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, but got {per_minute}")
        self.per_minute = per_minute
        self.shared = shared
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._next_prune = clock() + 60.0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, caller: str) -> None:
        """Spend one call of `caller`'s; raises AccessDenied (429) when none is left."""
        if self.shared is not None:
            wait = self.shared.take(caller, self.per_minute)
            if wait is not None:
                raise self._refusal(wait)
            return
        now = self._clock()
        rate = self.per_minute / 60.0
        with self._lock:
            if now >= self._next_prune or len(self._buckets) >= MAX_BUCKETS:
                self._prune(now, rate)
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                raise self._refusal((1.0 - bucket.tokens) / rate)
            bucket.tokens -= 1.0

    def _refusal(self, wait: float) -> AccessDenied:
        return AccessDenied(
            429,
            f"rate limit of {self.per_minute} requests a minute reached; retry in {wait:.0f} s",
            retry_after=wait,
        )

    def _prune(self, now: float, rate: float) -> None:
        full = [
            caller
            for caller, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * rate >= self.per_minute
        ]
        for caller in full:
            del self._buckets[caller]
        self._next_prune = now + 60.0


class OperatorSignIns:
    """Console sign-ins: a token naming an admin key's fingerprint and an expiry, signed with
    the server's secret. Valid until it expires and while that key is still configured.

    >>> sign_ins = OperatorSignIns(b"0123456789abcdef", ["admin-key"])
    >>> token = sign_ins.issue("admin-key")
    >>> sign_ins.owner(token) == "key:" + fingerprint("admin-key")
    True
    >>> sign_ins.issue("a-chat-key") is None, sign_ins.owner(token + "0")
    (True, None)
    """

    def __init__(self, secret: bytes, admin_keys: list[str], clock=time.time) -> None:
        self._secret = hmac.new(secret, b"operator sign-in", hashlib.sha256).digest()
        self._keys = {fingerprint(key) for key in admin_keys}
        self._admin_keys = list(admin_keys)
        self._clock = clock

    def issue(self, key: str) -> str | None:
        """A sign-in token for an admin key; None for any other key."""
        if not _known(key, self._admin_keys):
            return None
        claim = f"{int(self._clock()) + SIGN_IN_SECONDS}.{fingerprint(key)}"
        return f"{claim}.{self._sign(claim)}"

    def owner(self, token: str | None) -> str | None:
        """`key:<fingerprint>` of the admin key a valid token was issued for, else None."""
        claim, _, signature = (token or "").rpartition(".")
        expires, _, key = claim.partition(".")
        if not claim or not hmac.compare_digest(signature, self._sign(claim)):
            return None
        if not expires.isdigit() or int(expires) < self._clock() or key not in self._keys:
            return None
        return f"key:{key}"

    def _sign(self, claim: str) -> str:
        return hmac.new(self._secret, claim.encode(), hashlib.sha256).hexdigest()[:32]


def fingerprint(key: str) -> str:
    """What names a key in owners and logs: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Access:
    """Checks `/v1` callers' keys and rates; `limiter` is shared with the chat page's gate.
    With `sign_ins`, a console cookie stands for its admin key on the admin routes."""

    def __init__(self, settings: Settings, sign_ins: OperatorSignIns | None = None) -> None:
        self.chat_keys = list(settings.chat_keys)
        self.admin_keys = list(settings.admin_keys)
        shared = RateBuckets(settings.database_url) if settings.database_url else None
        self.limiter = RateLimiter(settings.rate_limit_per_minute, shared=shared)
        self.sign_ins = sign_ins

    @property
    def keys_required(self) -> bool:
        return bool(self.chat_keys or self.admin_keys)

    def chat_caller(
        self, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        """A FastAPI dependency: the caller of a chat route."""
        return self.check(authorization, client_address(request), "chat")

    def admin_caller(
        self, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        """A FastAPI dependency: the caller of an admin route (a key, or a console sign-in)."""
        if authorization is None and self.sign_ins is not None and self.admin_keys:
            owner = self.sign_ins.owner(request.cookies.get(CONSOLE_COOKIE))
            if owner is not None:
                if request.method not in SAFE_METHODS and CONSOLE_HEADER not in request.headers:
                    raise AccessDenied(403, "console requests need the X-Shopbot-Console header")
                self.limiter.take(owner)
                return Caller(owner, admin=True)
        return self.check(authorization, client_address(request), "admin")

    def check(self, authorization: str | None, client: str, scope: Scope) -> Caller:
        """The caller, after checking its key and rate. Raises AccessDenied."""
        key = _bearer(authorization)
        if scope == "admin" and not self.admin_keys:
            raise AccessDenied(403, "admin routes are off: set SHOPBOT_ADMIN_KEYS to enable them")
        if not self.keys_required:
            self.limiter.take(f"client:{client}")
            return Caller(OPEN_OWNER)
        if key is None:
            raise AccessDenied(401, "missing API key: send 'Authorization: Bearer <key>'")
        admin = _known(key, self.admin_keys)
        if not admin and not _known(key, self.chat_keys):
            raise AccessDenied(401, "unknown API key")
        if scope == "admin" and not admin:
            raise AccessDenied(403, "this key may not use admin routes")
        owner = "key:" + fingerprint(key)
        self.limiter.take(owner)
        return Caller(owner, admin=admin)


def client_address(request: Request) -> str:
    """The client's address: the socket's, or what a trusted proxy said (see
    `bot.channels.http`, which believes X-Forwarded-For only from `trusted_proxies`)."""
    return request.client.host if request.client else "unknown"


def is_loopback(host: str) -> bool:
    """Whether serving on `host` is reachable from this machine only."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bearer(authorization: str | None) -> str | None:
    scheme, _, key = (authorization or "").partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def _known(key: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(key.encode(), known.encode()) for known in keys)
