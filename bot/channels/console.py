"""The operators' console at `/admin`: sign in with an admin key, then the inbox of
conversations waiting for a person (read, reply, hand back to the bot), the review of the
bot's turns (mark them good, or wrong with the right intent) and the analytics.

    GET  /admin             the console page (a sign-in form until signed in)
    POST /admin/sign-in     {"key": "<admin key>"} -> a sign-in cookie (HttpOnly, SameSite=Strict)
    POST /admin/sign-out    forgets it

The page is static: it holds no key and no data. Its script reads and writes through the
admin routes (`bot.channels.admin`, `/v1/admin/...`), where the cookie stands for the key
(`bot.channels.access.OperatorSignIns`); requests that change anything carry the
`X-Shopbot-Console` header, which another site's page cannot send. Sign-in attempts pay the
client address's rate, so a key cannot be guessed at speed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from bot.channels.access import (
    CONSOLE_COOKIE,
    CONSOLE_HEADER,
    SIGN_IN_SECONDS,
    Access,
    AccessDenied,
    client_address,
)

CONSOLE_PAGE = Path(__file__).resolve().parent.parent / "static" / "console.html"
MAX_KEY_CHARS = 512


class SignIn(BaseModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)


def console_router(access: Access) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/admin")
    def console() -> FileResponse:
        return FileResponse(CONSOLE_PAGE, headers=PAGE_HEADERS)

    @router.post("/admin/sign-in")
    def sign_in(body: SignIn, request: Request) -> Response:
        """Trade an admin key for a sign-in cookie; 401 for any other key."""
        if CONSOLE_HEADER not in request.headers:
            raise AccessDenied(403, "sign in from the console page")
        access.limiter.take(f"client:{client_address(request)}")
        if not access.admin_keys or access.sign_ins is None:
            raise AccessDenied(403, "the console is off: set SHOPBOT_ADMIN_KEYS to enable it")
        token = access.sign_ins.issue(body.key.strip())
        if token is None:
            raise AccessDenied(401, "that is not an admin key")
        response = JSONResponse({"signed_in": True, "expires_in_s": SIGN_IN_SECONDS})
        response.set_cookie(
            CONSOLE_COOKIE,
            token,
            max_age=SIGN_IN_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/admin/sign-out")
    def sign_out() -> Response:
        response = JSONResponse({"signed_in": False})
        response.delete_cookie(CONSOLE_COOKIE, httponly=True, samesite="strict")
        return response

    return router


# The console is never framed by another site, and runs only its own inline script.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
