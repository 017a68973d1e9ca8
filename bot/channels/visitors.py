"""Visitor credentials for the chat page and the widget: the public channel's identity.

A browser that opens the page gets a credential from the server: a random id signed with
the server's secret, in an HttpOnly cookie (`shopbot_visitor`), so page scripts (and any
script injected into them) cannot read it. The sessions a browser makes belong to
`visitor:<id>`; another browser, or a REST caller, cannot read, continue or silence them.

`VisitorGate` is the ASGI middleware in front of every page route (everything outside
`/v1`, `/healthz`, the widget script and product images): a page request without a valid
credential gets a new one (charged to the client address's rate bucket, so rotating
cookies does not escape the limit), a call (any POST: Gradio's queue, `/gradio_api/call/*`,
uploads) without one is a 401, and each call spends one of the visitor's
`rate_limit_per_minute`. A POST from another site's page (an `Origin` that is not this
server's) is refused, so the cookie cannot be ridden from elsewhere.

Over https the cookie is `SameSite=None; Secure; Partitioned`, so the widget's iframe keeps
it on a shop's own domain (partitioned per shop site); over plain http it is
`SameSite=Lax`, which covers the page and a widget on the same site.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.channels.access import AccessDenied, RateLimiter

COOKIE = "shopbot_visitor"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Routes that are not the page: REST checks its own keys; probes, the widget script and
# product images are public and carry no session.
NOT_PAGE = (
    *("/v1/", "/healthz", "/widget.js", "/widget/", "/images/", "/docs", "/openapi.json"),
    "/admin",  # the operators' console signs its users in itself (bot.channels.console)
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class VisitorCredentials:
    """Issues and checks signed visitor ids.

    >>> credentials = VisitorCredentials(b"secret")
    >>> token = credentials.issue()
    >>> credentials.owner(token) == "visitor:" + token.split(".")[0]
    True
    >>> credentials.owner(token[:-1] + "x") is None
    True
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError(f"the visitor secret must be at least 16 bytes, got {len(secret)}")
        self._secret = secret

    @classmethod
    def kept_in(cls, path: Path, secret: str | None = None) -> VisitorCredentials:
        """Credentials signed with `secret`, or with the key kept in the file `path`
        (created on first use, readable by this user only), so they survive restarts."""
        if secret:
            return cls(secret.encode())
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(path.read_bytes().strip())
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        return cls(path.read_bytes().strip())

    def issue(self) -> str:
        visitor = secrets.token_urlsafe(24)  # 192 random bits
        return f"{visitor}.{self._sign(visitor)}"

    def owner(self, token: str | None) -> str | None:
        """`visitor:<id>` for a credential this server issued, else None."""
        visitor, _, signature = (token or "").partition(".")
        if not visitor or not hmac.compare_digest(signature, self._sign(visitor)):
            return None
        return f"visitor:{visitor}"

    def owner_of(self, cookies: dict[str, str] | None) -> str | None:
        """The visitor a request's cookies name (a `gr.Request`'s `.cookies`), or None."""
        return self.owner((cookies or {}).get(COOKIE))

    def derived_secret(self, purpose: str) -> bytes:
        """A secret of this server's for another use (operator sign-ins), derived from the
        visitors' one, so one key file serves both and neither reveals the other."""
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def _sign(self, visitor: str) -> str:
        return hmac.new(self._secret, visitor.encode(), hashlib.sha256).hexdigest()[:32]


class VisitorGate:
    """ASGI middleware: the page's routes need a visitor credential and pay its rate."""

    def __init__(
        self,
        app: Any,
        credentials: VisitorCredentials,
        limiter: RateLimiter,
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.limiter = limiter
        # Besides this server's own (the Host header): for a proxy that rewrites Host.
        self.allowed_origins = {origin.rstrip("/").lower() for origin in allowed_origins}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(NOT_PAGE):
            return await self.app(scope, receive, send)
        headers = {key.lower(): value for key, value in scope.get("headers") or []}
        owner = self.credentials.owner(_cookie(headers.get(b"cookie", b""), COOKIE))
        if scope["type"] == "websocket":
            if owner is None or self._foreign(headers):
                return await send({"type": "websocket.close", "code": 1008})
            return await self.app(scope, receive, send)
        method = scope.get("method", "GET")
        client = (scope.get("client") or ("unknown", 0))[0]
        try:
            if method not in SAFE_METHODS and self._foreign(headers):
                raise AccessDenied(403, "cross-site request refused")
            if owner is None:
                if method not in SAFE_METHODS:
                    raise AccessDenied(
                        401, "no visitor credential: open the chat page first (cookies on)"
                    )
                self.limiter.take(f"new-visitor:{client}")
                token = self.credentials.issue()
                scope = _with_cookie(scope, token)
                send = _setting_cookie(send, token, secure=scope.get("scheme") == "https")
            elif method not in SAFE_METHODS:
                self.limiter.take(owner)
        except AccessDenied as exc:
            return await _refuse(send, exc)
        await self.app(scope, receive, send)

    def _foreign(self, headers: dict[bytes, bytes]) -> bool:
        """Whether the request comes from another site's page: an `Origin` that is neither
        this server's (its Host) nor one of `allowed_origins`. No Origin: not a browser's
        cross-site request (browsers send one with every cross-site POST)."""
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
        if not origin:
            return False
        if origin in self.allowed_origins:
            return False
        host = headers.get(b"host", b"").decode("latin-1").lower()
        return origin == "null" or urlsplit(origin).netloc != host


def _cookie(header: bytes, name: str) -> str | None:
    try:
        jar = SimpleCookie(header.decode("latin-1"))
    except CookieError:
        return None
    return jar[name].value if name in jar else None


def _with_cookie(scope: dict, token: str) -> dict:
    """The request as if it had carried the new credential, for the handlers behind."""
    headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() != b"cookie"]
    headers.append((b"cookie", f"{COOKIE}={token}".encode()))
    return {**scope, "headers": headers}


def _setting_cookie(send, token: str, secure: bool):
    attributes = f"{COOKIE}={token}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly"
    attributes += "; Secure; SameSite=None; Partitioned" if secure else "; SameSite=Lax"

    async def sending(message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"set-cookie", attributes.encode())]
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _refuse(send, exc: AccessDenied) -> None:
    headers = [(b"content-type", b"application/json")]
    if exc.retry_after:
        headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    body = json.dumps({"detail": str(exc)}).encode()
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
