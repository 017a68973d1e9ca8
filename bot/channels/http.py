"""The HTTP app: every channel on one FastAPI app, behind the same middleware.

    app = build_app(settings, shop, chats)     # bot.app.create_app builds shop and chats

Channels: REST under `/v1` (`bot.channels.rest`), the OpenAI-compatible route
(`bot.channels.openai`), the Chatwoot webhook (`bot.channels.chatwoot`), the widget script
(`bot.channels.widget`) and the Gradio page at `/` (`bot.channels.page`). They all talk to
one `ChatService`. OpenAPI docs are at `/docs`.

Middleware, outermost first: CORS (when `cors_origins` is set, so even a 413 carries its
headers), the client address from `trusted_proxies`, the body-size limit, and the page's
visitor gate (`bot.channels.visitors`). Errors are JSON, `{"detail": "..."}`, with the
matching status code.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from bot.channels.access import Access, AccessDenied, OperatorSignIns
from bot.channels.admin import admin_router
from bot.channels.chatwoot import chatwoot_router
from bot.channels.console import console_router
from bot.channels.openai import openai_router
from bot.channels.rest import rest_router
from bot.channels.visitors import VisitorCredentials, VisitorGate
from bot.channels.widget import widget_router
from bot.dialogue.reply import Reply
from bot.dialogue.service import ChatService, ChatUnavailable
from bot.lm.server import LMServerError
from bot.settings import Settings
from bot.shop import Shop
from bot.stores.reviews import TurnReviews
from bot.stores.sessions import UnknownSession
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

CATALOG_BODY_FACTOR = 50  # a catalog upload may be this many times max_body_bytes
HELPDESK_OWNER = "helpdesk:chatwoot"  # the owner of the help desk's sessions


def build_app(
    settings: Settings,
    shop: Shop,
    chats: ChatService,
    *,
    ui: bool = True,
    preload_lm: bool = True,
) -> FastAPI:
    """The app with every channel; `ui=False` leaves out the Gradio page, `preload_lm=False`
    opens the LM on the first turn instead of at start-up."""
    visitors = VisitorCredentials.kept_in(settings.visitor_key_path, settings.visitor_secret)
    sign_ins = OperatorSignIns(visitors.derived_secret("operators"), list(settings.admin_keys))
    access = Access(settings, sign_ins)
    reviews = TurnReviews(settings.sessions_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        shop.ensure_demo_catalog()
        shop.open_stores()  # the first shopper should not wait for the models
        if preload_lm:
            chats.warm_up()
        yield
        chats.close()
        reviews.close()
        shop.close()

    app = FastAPI(
        title="shopbot",
        description="Conversational shopping and customer-service assistant.",
        lifespan=lifespan,
    )
    app.state.shop = shop
    app.state.chats = chats
    add_middleware(app, settings, access, visitors)
    add_error_handlers(app)

    def helpdesk_answer(message: str, session_id: str, shopper_id: str | None) -> Reply:
        return chats.reply(message, session_id, shopper_id, owner=HELPDESK_OWNER)

    # Chatwoot cannot send bearer keys: the webhook's shared secret is its credential.
    app.include_router(chatwoot_router(settings, helpdesk_answer))
    app.include_router(widget_router(settings))
    app.include_router(rest_router(settings, shop, chats, access))
    app.include_router(admin_router(shop, chats, access, reviews))
    app.include_router(openai_router(chats, access))
    app.include_router(console_router(access))
    if ui:
        import gradio as gr

        from bot.channels.page import EMBED_HEAD, PAGE_CSS, build_page

        page = build_page(shop, chats, visitors)
        app = gr.mount_gradio_app(app, page, path="/", css=PAGE_CSS, head=EMBED_HEAD)
    return app


def add_middleware(
    app: FastAPI, settings: Settings, access: Access, visitors: VisitorCredentials
) -> None:
    """Added innermost first: Starlette runs the last one added first."""
    app.add_middleware(
        VisitorGate,
        credentials=visitors,
        limiter=access.limiter,
        allowed_origins=tuple(o for o in settings.cors_origins if o != "*"),
    )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.trusted_proxies:  # only these may say who the client is (X-Forwarded-For)
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Session-Id"],
            expose_headers=["X-Session-Id"],
        )


def add_error_handlers(app: FastAPI) -> None:
    """Every error a user sees is JSON with the status that says what went wrong."""

    @app.exception_handler(RetrievalError)
    async def retrieval_error(request, exc: RetrievalError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(ChatUnavailable)
    async def chat_unavailable(request, exc: ChatUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(LMServerError)
    async def lm_server_error(request, exc: LMServerError) -> JSONResponse:
        log.warning("chat unavailable: %s", exc)  # the server's address stays in the log
        detail = "the language model server is unavailable; please try again shortly"
        return JSONResponse(status_code=503, content={"detail": detail})

    @app.exception_handler(UnknownSession)
    async def unknown_session(request, exc: UnknownSession) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(AccessDenied)
    async def access_denied(request, exc: AccessDenied) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return JSONResponse(status_code=400, content={"detail": "malformed JSON body"})
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors
        )
        return JSONResponse(status_code=422, content={"detail": problems})


class BodyLimit:
    """Refuses request bodies over the limit with 413, whether or not they say their size.
    A catalog upload may be CATALOG_BODY_FACTOR times larger."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit * (CATALOG_BODY_FACTOR if scope["path"] == "/v1/catalog" else 1)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            return await _too_large(send, limit)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counted_receive, send)
        except _BodyTooLarge:
            await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over the limit of {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
