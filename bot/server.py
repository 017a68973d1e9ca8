"""The web app: Gradio chat page at `/`, REST under `/v1`, health at `/healthz`, one process.

    from bot.server import create_app
    app = create_app(load_settings())      # any ASGI server can run it

`shopbot serve` runs it with uvicorn. On first start with an empty catalog the generated demo
catalog is ingested, so a fresh install has something to show. Every channel (page, REST,
OpenAI-compatible endpoint, help desk) talks to the same `ChatService`. OpenAPI docs are at
`/docs`. Errors are JSON, `{"detail": "..."}`, with the matching status code.
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

from bot.access import Access, AccessDenied
from bot.chat_service import ChatService, ChatUnavailable
from bot.helpdesk import chatwoot_router
from bot.images import placeholder_svg
from bot.settings import Settings
from bot.shop import Shop
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


class ChatIn(BaseModel):
    session_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        pattern=ID_PATTERN,
        description="The conversation; a new one when left out.",
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
        None, pattern=ID_PATTERN, description="Used as the session id (the conversation)."
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
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:  # added last, so outermost: even a 413 carries CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(RetrievalError)
    async def retrieval_error(request, exc: RetrievalError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(ChatUnavailable)
    async def chat_unavailable(request, exc: ChatUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

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

    def chat_scope(request: Request, authorization: Annotated[str | None, Header()] = None):
        return access.check(authorization, _client(request), "chat")

    def admin_scope(request: Request, authorization: Annotated[str | None, Header()] = None):
        return access.check(authorization, _client(request), "admin")

    chat_only = [Depends(chat_scope)]
    admin_only = [Depends(admin_scope)]

    # Chatwoot cannot send bearer keys: the webhook's own `?token=` is its credential.
    app.include_router(chatwoot_router(settings, chats.reply))
    app.include_router(widget_router(settings))

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "products": shop.catalog.count()}

    @app.get("/v1/products/search", dependencies=chat_only)
    def search_products(
        q: Annotated[str, Query(max_length=1000, description="What the shopper wants.")] = "",
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        price_min: Annotated[float | None, Query(ge=0)] = None,
        price_max: Annotated[float | None, Query(ge=0)] = None,
        category: Annotated[list[str] | None, Query()] = None,
        brand: Annotated[list[str] | None, Query()] = None,
        colour: Annotated[list[str] | None, Query()] = None,
        size: Annotated[list[str] | None, Query()] = None,
        in_stock: bool | None = None,
        rating_min: Annotated[float | None, Query(ge=0, le=5)] = None,
        shopper_id: Annotated[str | None, Query(max_length=200)] = None,
        session_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        """Products for a request, ranked for this shopper, each with its reasons."""
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

    @app.post("/v1/feedback", status_code=201, dependencies=chat_only)
    def feedback(body: FeedbackIn) -> dict:
        """Record a shopper's reaction; it is on disk before this answers."""
        try:
            stored = shop.record_feedback(FeedbackEvent(**body.model_dump()))
        except UnknownProduct as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except InvalidEvent as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"stored": stored, "duplicate": not stored}

    @app.delete("/v1/shoppers/{shopper_id}", dependencies=admin_only)
    def delete_shopper(shopper_id: str) -> dict:
        """Forget everything stored about one shopper (admin key required): their feedback
        events and their conversations."""
        _check_id(shopper_id, "shopper id")
        turns = chats.sessions.delete_shopper(shopper_id)
        return {
            "shopper_id": shopper_id,
            "deleted_events": shop.events.delete_shopper(shopper_id),
            "deleted_turns": turns,
        }

    @app.get("/v1/policies/search", dependencies=chat_only)
    def search_policies(
        q: Annotated[str, Query(min_length=1, max_length=1000)],
        k: Annotated[int, Query(ge=1, le=20)] = 3,
    ) -> dict:
        return {
            "query": q,
            "sections": [hit.to_dict() for hit in shop.catalog.policies.search(q, k)],
        }

    @app.post("/v1/chat", dependencies=chat_only)
    def chat(body: ChatIn) -> dict:
        """One chat turn: the structured reply (text, products, citations, follow-ups,
        handoff flag, the parsed intent and slots)."""
        return _turn_or_error(chats.reply, body.message, body.session_id, body.shopper_id)

    @app.post("/v1/chat/stream", dependencies=chat_only)
    def chat_stream(body: ChatIn) -> StreamingResponse:
        """The same turn as server-sent events: `start`, `delta` (pieces of the reply text
        as they are written), then `reply` (the structured reply); `error` on failure."""
        events = _started(chats.stream(body.message, body.session_id, body.shopper_id))
        return StreamingResponse(_sse(events), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    def chat_completions(
        body: CompletionIn,
        x_session_id: Annotated[str | None, Header(pattern=ID_PATTERN)] = None,
        identity: str = Depends(chat_scope),  # noqa: B008 (a local dependency)
    ):
        """OpenAI-compatible chat: any OpenAI client can talk to the bot. The bot keeps the
        conversation itself, so only the last user message is read; the session is `user`
        (or the `X-Session-Id` header, or else derived from the conversation's start)."""
        message = _last_user_text(body.messages)
        session_id = x_session_id or body.user or _conversation_id(identity, body.messages)
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        if not body.stream:
            reply = _turn_or_error(chats.reply, message, session_id, None)
            return _completion(completion_id, created, body.model, reply)
        events = _started(chats.stream(message, session_id, None))
        chunks = _completion_chunks(completion_id, created, body.model, events)
        return StreamingResponse(chunks, media_type="text/event-stream")

    @app.get("/v1/sessions/{session_id}", dependencies=chat_only)
    def get_session(
        session_id: str,
        shopper_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ) -> dict:
        """A conversation's turns and state. A session that belongs to a shopper is shown
        only to a request naming that shopper."""
        _check_id(session_id, "session id")
        history = chats.sessions.history(session_id)
        if not history:
            raise HTTPException(status_code=404, detail=f"no session {session_id!r}")
        state = chats.sessions.state(session_id)
        if state.shopper_id and shopper_id != state.shopper_id:
            raise HTTPException(status_code=403, detail="this session belongs to another shopper")
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
            except (ValueError, UnicodeDecodeError):
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
                report = shop.catalog.ingest(path)
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

        page = build_page(shop, chats)
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


def _turn_or_error(run, message: str, session_id: str, shopper_id: str | None) -> dict:
    from bot.dialogue import SessionForbidden

    try:
        return run(message, session_id, shopper_id)
    except SessionForbidden as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None


def _started(events: Iterator[dict]) -> Iterator[dict]:
    """Run the turn up to its first event before the response starts, so a refused turn
    (another shopper's session) is a plain 403, not an error inside a stream."""
    from bot.dialogue import SessionForbidden

    try:
        first = next(events)
    except SessionForbidden as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
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


def _conversation_id(identity: str, messages: list[OpenAIMessage]) -> str:
    """A stable session id for clients that resend the whole conversation each time."""
    first = next((m for m in messages if m.role == "user"), messages[0])
    seed = f"{identity}|{first.content}"
    return "oai-" + uuid.uuid5(uuid.NAMESPACE_URL, seed).hex


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


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    from bot.redact import redact_logs

    log.info("shopbot on http://%s:%s (data in %s)", host, port, settings.data_dir)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)  # the config sets up uvicorn's loggers; then redact them
    redact_logs(*(logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")))
    server.run()
