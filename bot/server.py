"""The web app: Gradio chat page at `/`, REST under `/v1`, health at `/healthz`, one process.

    from bot.server import create_app
    app = create_app(load_settings())      # any ASGI server can run it

`shopbot serve` runs it with uvicorn. On first start with an empty catalog the generated demo
catalog is ingested, so a fresh install has something to show. Every channel (page, REST,
OpenAI-compatible endpoint, help desk) talks to the same `ChatService`. OpenAPI docs are at
`/docs`. Errors are JSON, `{"detail": "..."}`, with the matching status code.

Who may use what is in `bot.access` and docs/security.md: a session belongs to the caller
that made it (a key, a page visitor, the open local API) and to its shopper; anyone else gets
404 for it on every route. A request without a session id gets one issued here.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.access import Access, AccessDenied, Caller, is_loopback
from bot.chat_service import ChatService, ChatUnavailable
from bot.dialogue import UnknownSession, new_session_id
from bot.errors import ConfigError
from bot.helpdesk import chatwoot_router
from bot.images import placeholder_svg
from bot.settings import Settings
from bot.shop import Shop
from bot.visitors import VisitorCredentials, VisitorGate
from bot.widget import widget_router
from retrieval.errors import CatalogFileError, RetrievalError
from retrieval.events import FeedbackEvent, InvalidEvent, UnknownProduct
from retrieval.filters import ProductFilters

log = logging.getLogger("shopbot.server")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"  # no slashes, no leading dot
MAX_MESSAGE = 4000
CATALOG_BODY_FACTOR = 50  # a catalog upload may be this many times max_body_bytes


class FeedbackIn(BaseModel):
    type: Literal["impression", "click", "like", "dislike", "add_to_cart", "purchase"]
    product_id: str = Field(min_length=1, max_length=200)
    session_id: str = Field(min_length=1, max_length=200)
    shopper_id: str | None = Field(None, max_length=200)
    event_id: str | None = Field(None, max_length=200, description="Idempotency key.")
    position: int | None = Field(None, ge=0, le=1000)


HELPDESK_OWNER = "helpdesk:chatwoot"


class ChatIn(BaseModel):
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="The conversation: one the server issued (the reply's `session_id`), or "
        "an id of the caller's own (scoped to its key); left out, a new one is issued.",
    )
    message: str = Field(max_length=MAX_MESSAGE, description="What the shopper wrote.")
    shopper_id: str | None = Field(None, pattern=ID_PATTERN, description="For personal ranking.")


class OpenAIMessage(BaseModel):
    role: str = Field(max_length=20)
    content: str | list[dict[str, Any]] | None = None


class CompletionIn(BaseModel):
    model: str = Field("shopbot", max_length=200)
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    user: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="The session id (the conversation); left out, each request is a new one.",
    )


def create_app(
    settings: Settings,
    *,
    shop: Shop | None = None,
    ui: bool = True,
    chats: ChatService | None = None,
    preload_lm: bool = True,
) -> FastAPI:
    shop = shop or Shop(settings)
    chats = chats or ChatService(settings, shop)
    access = Access(settings)
    visitors = VisitorCredentials.for_data_dir(settings.data_dir, settings.visitor_secret)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        shop.ensure_demo_catalog()
        shop.catalog.embedder.load()  # the first shopper should not wait for the model
        shop.events.count()  # open the feedback store now: it loads the learnt click rates
        if preload_lm:
            chats.warm_up()
        yield
        chats.close()
        shop.close()

    app = FastAPI(
        title="shopbot",
        description="Conversational shopping and customer-service assistant.",
        lifespan=lifespan,
    )
    app.state.shop = shop
    app.state.chats = chats
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
    if settings.cors_origins:  # added last, so outermost: even a 413 carries CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Session-Id"],
            expose_headers=["X-Session-Id"],
        )

    @app.exception_handler(RetrievalError)
    async def retrieval_error(request, exc: RetrievalError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(ChatUnavailable)
    async def chat_unavailable(request, exc: ChatUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

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

    def chat_scope(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        return access.check(authorization, _client(request), "chat")

    def admin_scope(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        return access.check(authorization, _client(request), "admin")

    admin_only = [Depends(admin_scope)]

    def own_session(caller: Caller, session_id: str | None, shopper_id: str | None = None):
        """Check that a session named by a search or feedback is the caller's (or start it
        for them); raises UnknownSession otherwise."""
        if session_id is not None and not chats.sessions.open(session_id, caller.owner, shopper_id):
            raise UnknownSession(session_id)

    def helpdesk_answer(message: str, session_id: str, shopper_id: str | None) -> dict:
        return chats.reply(message, session_id, shopper_id, owner=HELPDESK_OWNER)

    # Chatwoot cannot send bearer keys: the webhook's shared secret is its credential.
    app.include_router(chatwoot_router(settings, helpdesk_answer))
    app.include_router(widget_router(settings))

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "products": shop.catalog.count()}

    @app.get("/v1/products/search")
    def search_products(
        caller: Caller = Depends(chat_scope),  # noqa: B008 (a local dependency)
        q: Annotated[str, Query(max_length=1000, description="What the shopper wants.")] = "",
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        price_min: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
        price_max: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
        category: Annotated[list[str] | None, Query()] = None,
        brand: Annotated[list[str] | None, Query()] = None,
        colour: Annotated[list[str] | None, Query()] = None,
        size: Annotated[list[str] | None, Query()] = None,
        in_stock: bool | None = None,
        rating_min: Annotated[float | None, Query(ge=0, le=5, allow_inf_nan=False)] = None,
        shopper_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        session_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ) -> dict:
        """Products for a request, ranked for this shopper, each with its reasons. With a
        `session_id` (the caller's own), what was shown is logged as impressions."""
        own_session(caller, session_id, shopper_id)
        try:
            filters = ProductFilters(
                price_min=price_min,
                price_max=price_max,
                category=category or [],
                brand=brand or [],
                colour=colour or [],
                size=size or [],
                in_stock=in_stock,
                rating_min=rating_min,
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        try:
            ranked = shop.recommend(q, k, filters, shopper_id=shopper_id, session_id=session_id)
        except InvalidEvent as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"query": q, "products": [item.to_dict() for item in ranked]}

    @app.post("/v1/feedback", status_code=201)
    def feedback(
        body: FeedbackIn,
        caller: Caller = Depends(chat_scope),  # noqa: B008 (a local dependency)
    ) -> dict:
        """Record a shopper's reaction in one of the caller's sessions; it is on disk before
        this answers. A repeat (same `event_id`, or without one the same type, product and
        session within a few seconds) is stored once."""
        own_session(caller, body.session_id, body.shopper_id)
        try:
            stored = shop.record_feedback(FeedbackEvent(**body.model_dump()))
        except UnknownProduct as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except InvalidEvent as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"stored": stored, "duplicate": not stored}

    @app.delete("/v1/shoppers/{shopper_id}", dependencies=admin_only)
    def delete_shopper(shopper_id: str) -> dict:
        """Forget everything stored about one shopper (admin key required): every session
        they owned with all its turns, and every feedback event of theirs or of those
        sessions (their profile is built from those events, so it goes too)."""
        _check_id(shopper_id, "shopper id")
        turns, sessions = chats.sessions.delete_shopper(shopper_id)
        return {
            "shopper_id": shopper_id,
            "deleted_events": shop.events.delete_shopper(shopper_id, sessions),
            "deleted_turns": turns,
            "deleted_sessions": len(sessions),
        }

    @app.get("/v1/policies/search", dependencies=[Depends(chat_scope)])
    def search_policies(
        q: Annotated[str, Query(min_length=1, max_length=1000)],
        k: Annotated[int, Query(ge=1, le=20)] = 3,
    ) -> dict:
        return {
            "query": q,
            "sections": [hit.to_dict() for hit in shop.catalog.policies.search(q, k)],
        }

    @app.post("/v1/chat")
    def chat(
        body: ChatIn,
        caller: Caller = Depends(chat_scope),  # noqa: B008 (a local dependency)
    ) -> dict:
        """One chat turn: the structured reply (text, products, citations, follow-ups,
        handoff flag, the parsed intent and slots, and `session_id`: send it back to go on
        with the conversation). Another caller's session is a 404."""
        session_id = body.session_id or new_session_id()
        return chats.reply(body.message, session_id, body.shopper_id, caller.owner)

    @app.post("/v1/chat/stream")
    def chat_stream(
        body: ChatIn,
        caller: Caller = Depends(chat_scope),  # noqa: B008 (a local dependency)
    ) -> StreamingResponse:
        """The same turn as server-sent events: `start`, `delta` (pieces of the reply text
        as they are written), then `reply` (the structured reply); `error` on failure."""
        session_id = body.session_id or new_session_id()
        events = _started(chats.stream(body.message, session_id, body.shopper_id, caller.owner))
        return StreamingResponse(
            _sse(events), media_type="text/event-stream", headers={"X-Session-Id": session_id}
        )

    @app.post("/v1/chat/completions")
    def chat_completions(
        body: CompletionIn,
        caller: Caller = Depends(chat_scope),  # noqa: B008 (a local dependency)
        x_session_id: Annotated[str | None, Header(pattern=ID_PATTERN)] = None,
    ):
        """OpenAI-compatible chat: any OpenAI client can talk to the bot. The bot keeps the
        conversation itself, so only the last user message is read. The conversation is
        `user` (or the `X-Session-Id` header); without either each request starts a new
        one, whose id comes back in the `X-Session-Id` response header and in
        `shopbot.session_id`: send it as `user` to go on."""
        message = _last_user_text(body.messages)
        session_id = x_session_id or body.user or new_session_id("oai-")
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        headers = {"X-Session-Id": session_id}
        if not body.stream:
            reply = chats.reply(message, session_id, None, caller.owner)
            completion = _completion(completion_id, created, body.model, reply)
            return JSONResponse(completion, headers=headers)
        events = _started(chats.stream(message, session_id, None, caller.owner))
        chunks = _completion_chunks(completion_id, created, body.model, events)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)

    @app.get("/v1/sessions/{session_id}")
    def get_session(
        session_id: str,
        caller: Caller = Depends(chat_scope),  # noqa: B008 (a local dependency)
        shopper_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ) -> dict:
        """A conversation's turns and state, for the caller that made it. A session that
        belongs to a shopper is shown only to a request naming that shopper; anything else
        is a 404, the same as for an id nobody uses."""
        _check_id(session_id, "session id")
        if not chats.sessions.belongs_to(session_id, caller.owner, shopper_id):
            raise UnknownSession(session_id)
        history = chats.sessions.history(session_id)
        state = chats.sessions.state(session_id)
        return {
            "session_id": session_id,
            "handed_off": state.handed_off,
            "handoff_reason": state.handoff_reason,
            "turns": history,
        }

    @app.post("/v1/sessions/{session_id}/release", dependencies=admin_only)
    def release_session(session_id: str) -> dict:
        """Give a handed-over conversation back to the bot (admin key): it answers again."""
        _check_id(session_id, "session id")
        released = chats.sessions.release(session_id)
        return {"session_id": session_id, "released": bool(released)}

    @app.post("/v1/catalog", dependencies=admin_only)
    async def ingest_catalog(request: Request) -> dict:
        """Add or update products (admin key): a JSON array of products, or the body of a
        JSONL or CSV file (Content-Type application/x-ndjson or text/csv). Rows that fail
        validation are reported with their line and reason; the good rows are stored."""
        body = await request.body()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        suffix = ".csv" if kind in ("text/csv", "application/csv") else ".jsonl"
        if kind == "application/json":
            try:
                rows = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise HTTPException(status_code=400, detail="malformed JSON body") from None
            rows = rows.get("products") if isinstance(rows, dict) else rows
            if not isinstance(rows, list):
                raise HTTPException(
                    status_code=422,
                    detail='expected a JSON array of products or {"products": [...]}',
                )
            body = "\n".join(json.dumps(row) for row in rows).encode()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(body)
            try:
                # Embedding and indexing take seconds: off the event loop, so every other
                # route (health probes included) keeps answering during an upload.
                report = await run_in_threadpool(shop.catalog.ingest, path)
            except CatalogFileError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from None
        document = report.to_dict()
        document["source"] = "api"
        return document

    @app.get("/images/{product_id}.svg", include_in_schema=False)
    def product_image(product_id: str) -> Response:
        product = shop.catalog.records.get_many([product_id]).get(product_id)
        if product is None:
            raise HTTPException(status_code=404, detail=f"no product {product_id!r}")
        return Response(
            placeholder_svg(product),
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    if ui:
        import gradio as gr

        from bot.ui import EMBED_HEAD, PAGE_CSS, build_page

        page = build_page(shop, chats, visitors)
        app = gr.mount_gradio_app(app, page, path="/", css=PAGE_CSS, head=EMBED_HEAD)
    return app


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


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_id(value: str, what: str) -> None:
    if not re.match(ID_PATTERN, value):
        raise HTTPException(
            status_code=400,
            detail=f"invalid {what}: use up to 128 letters, digits and _ . : @ -",
        )


def _started(events: Iterator[dict]) -> Iterator[dict]:
    """Run the turn up to its first event before the response starts, so a refused turn
    (another caller's session) is a plain 404, not an error inside a stream."""
    try:
        first = next(events)
    except StopIteration:
        return iter(())

    def chained() -> Iterator[dict]:
        yield first
        yield from events

    return chained()


def _sse(events: Iterator[dict]) -> Iterator[str]:
    try:
        for event in events:
            kind = event.pop("type")
            yield f"event: {kind}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
    except Exception:
        log.exception("chat stream failed")
        yield 'event: error\ndata: {"detail": "the assistant failed on this message"}\n\n'


def _last_user_text(messages: list[OpenAIMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            if isinstance(message.content, list):
                parts = [p.get("text", "") for p in message.content if p.get("type") == "text"]
                return " ".join(str(part) for part in parts)[:MAX_MESSAGE]
            return (message.content or "")[:MAX_MESSAGE]
    raise HTTPException(status_code=422, detail="messages: no message with role 'user'")


def _completion(completion_id: str, created: int, model: str, reply: dict) -> dict:
    timings = reply.get("timings_ms", {})
    prompt, completion = int(timings.get("prompt_tokens", 0)), int(timings.get("new_tokens", 0))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply["reply"]},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "shopbot": reply,
    }


def _completion_chunks(
    completion_id: str, created: int, model: str, events: Iterator[dict]
) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        document = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(document, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if event["type"] == "delta":
                yield chunk({"content": event["text"]})
            elif event["type"] == "reply":
                event.pop("type")
                yield chunk({}, "stop", shopbot=event)
    except Exception:
        log.exception("chat completion stream failed")
        yield 'data: {"error": {"message": "the assistant failed on this message"}}\n\n'
    yield "data: [DONE]\n\n"


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to serve the open API (no keys) on an address others can reach, unless the
    operator says so with `allow_open_access`. Raises ConfigError saying what to set."""
    keyed = bool(settings.chat_keys or settings.admin_keys)
    if keyed or is_loopback(host) or settings.allow_open_access:
        return
    raise ConfigError(
        f"refusing to serve on {host} with no API keys: anyone who can reach it could use "
        "every /v1 chat route. Set SHOPBOT_CHAT_KEYS and SHOPBOT_ADMIN_KEYS (the chat page "
        "and widget stay public), or SHOPBOT_ALLOW_OPEN_ACCESS=true if you mean it."
    )


def server_config(app: Any, **options: Any):
    """uvicorn's config for the app. X-Forwarded-For is believed only from
    `trusted_proxies` (see create_app), never, as uvicorn's default would, from any loopback
    client: behind no proxy, anyone could name any address and escape the rate limit."""
    import uvicorn

    return uvicorn.Config(app, proxy_headers=False, **options)


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    from bot.redact import redact_logs

    check_exposure(settings, host)
    log.info("shopbot on http://%s:%s (data in %s)", host, port, settings.data_dir)
    config = server_config(create_app(settings), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)  # the config sets up uvicorn's loggers; then redact them
    redact_logs(*(logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")))
    server.run()
