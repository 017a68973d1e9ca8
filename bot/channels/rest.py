"""The REST API under `/v1` (and `/healthz`, product images): search, feedback, chat turns
and their stream, sessions, the catalog and a shopper's erasure.

    app.include_router(rest_router(settings, shop, chats, access))

A session belongs to the caller that made it (`bot.channels.access`) and to its shopper;
anyone else gets 404 for it on every route. A request without a session id gets one
issued here. Errors are JSON, `{"detail": "..."}` (see `bot.channels.http`).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.channels.access import Access, Caller
from bot.channels.images import placeholder_svg
from bot.channels.streams import person_messages, sse, started
from bot.dialogue.reply import Reply
from bot.dialogue.service import ChatService
from bot.settings import ID_PATTERN, MAX_MESSAGE_CHARS, MAX_QUERY_CHARS, Settings
from bot.shop import Shop
from bot.stores.sessions import UnknownSession, new_session_id
from retrieval.errors import CatalogFileError
from retrieval.events import FeedbackEvent, InvalidEvent, UnknownProduct
from retrieval.filters import ProductFilters


class FeedbackIn(BaseModel):
    type: Literal["impression", "click", "like", "dislike", "add_to_cart", "purchase"]
    product_id: str = Field(min_length=1, max_length=200)
    session_id: str = Field(min_length=1, max_length=200)
    shopper_id: str | None = Field(None, max_length=200)
    event_id: str | None = Field(None, max_length=200, description="Idempotency key.")
    position: int | None = Field(None, ge=0, le=1000)


class ChatIn(BaseModel):
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="The conversation: one the server issued (the reply's `session_id`), or "
        "an id of the caller's own (scoped to its key); left out, a new one is issued.",
    )
    message: str = Field(max_length=MAX_MESSAGE_CHARS, description="What the shopper wrote.")
    shopper_id: str | None = Field(None, pattern=ID_PATTERN, description="For personal ranking.")


def rest_router(settings: Settings, shop: Shop, chats: ChatService, access: Access) -> APIRouter:
    router = APIRouter()
    admin_only = [Depends(access.admin_caller)]

    def own_session(caller: Caller, session_id: str | None, shopper_id: str | None = None):
        """Check that a session named by a search or feedback is the caller's (or start it
        for them); raises UnknownSession otherwise."""
        if session_id is not None and not chats.sessions.open(session_id, caller.owner, shopper_id):
            raise UnknownSession(session_id)

    @router.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "products": shop.product_count()}

    @router.get("/v1/products/search")
    def search_products(
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
        q: Annotated[
            str, Query(max_length=MAX_QUERY_CHARS, description="What the shopper wants.")
        ] = "",
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

    @router.post("/v1/feedback", status_code=201)
    def feedback(
        body: FeedbackIn,
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
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

    @router.delete("/v1/shoppers/{shopper_id}", dependencies=admin_only)
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

    @router.get("/v1/policies/search", dependencies=[Depends(access.chat_caller)])
    def search_policies(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int, Query(ge=1, le=20)] = 3,
    ) -> dict:
        return {
            "query": q,
            "sections": [hit.to_dict() for hit in shop.policy_hits(q, k)],
        }

    @router.post("/v1/chat", response_model=Reply)
    def chat(
        body: ChatIn,
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
    ) -> dict:
        """One chat turn: the structured reply (text, products, citations, follow-ups,
        handoff flag, the parsed intent and slots, and `session_id`: send it back to go on
        with the conversation). Another caller's session is a 404."""
        session_id = body.session_id or new_session_id()
        return chats.reply(body.message, session_id, body.shopper_id, caller.owner)

    @router.post("/v1/chat/stream")
    def chat_stream(
        body: ChatIn,
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
    ) -> StreamingResponse:
        """The same turn as server-sent events: `start`, `delta` (pieces of the reply text
        as they are written), then `reply` (the structured reply); `error` on failure."""
        session_id = body.session_id or new_session_id()
        events = started(chats.stream(body.message, session_id, body.shopper_id, caller.owner))
        return StreamingResponse(
            sse(events), media_type="text/event-stream", headers={"X-Session-Id": session_id}
        )

    @router.get("/v1/sessions/{session_id}")
    def get_session(
        session_id: str,
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
        shopper_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ) -> dict:
        """A conversation's turns and state, for the caller that made it. A session that
        belongs to a shopper is shown only to a request naming that shopper; anything else
        is a 404, the same as for an id nobody uses."""
        _check_id(session_id, "session id")
        if not chats.sessions.belongs_to(session_id, caller.owner, shopper_id):
            raise UnknownSession(session_id)
        return chats.sessions.transcript(session_id)

    @router.get("/v1/sessions/{session_id}/stream")
    def session_stream(
        session_id: str,
        request: Request,
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
        shopper_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ) -> StreamingResponse:
        """Server-sent events of the caller's conversation while people answer it: `agent`
        `{"text", "author", "ts"}` for each message a person writes from now on, then
        `released` when the bot answers again. Open it when a reply says `handoff`."""
        _check_id(session_id, "session id")
        if not chats.sessions.belongs_to(session_id, caller.owner, shopper_id):
            raise UnknownSession(session_id)
        since = time.time()
        events = person_messages(chats.sessions, session_id, since, request.is_disconnected)
        return StreamingResponse(events, media_type="text/event-stream")

    @router.post("/v1/sessions/{session_id}/release", dependencies=admin_only)
    def release_session(session_id: str) -> dict:
        """Give a handed-over conversation back to the bot (admin key): it answers again."""
        _check_id(session_id, "session id")
        released = chats.sessions.release(session_id)
        return {"session_id": session_id, "released": bool(released)}

    @router.post("/v1/catalog", dependencies=admin_only)
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
                report = await run_in_threadpool(shop.ingest, path)
            except CatalogFileError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from None
        document = report.to_dict()
        document["source"] = "api"
        return document

    @router.get("/images/{product_id}.svg", include_in_schema=False)
    def product_image(product_id: str) -> Response:
        product = shop.product(product_id)
        if product is None:
            raise HTTPException(status_code=404, detail=f"no product {product_id!r}")
        return Response(
            placeholder_svg(product),
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router


def _check_id(value: str, what: str) -> None:
    if not re.match(ID_PATTERN, value):
        raise HTTPException(
            status_code=400,
            detail=f"invalid {what}: use up to 128 letters, digits and _ . : @ -",
        )
