"""The operators' REST routes (admin key; 401 without one, 403 with a chat key): the inbox
of conversations waiting for a person, a person's messages to the shopper, and what the
bot did over a period.

    GET  /v1/admin/handoffs                 -> {"sessions": [{session_id, reason, since,
                                                 waiting_s, last_message}]}, newest first
    POST /v1/sessions/{id}/messages         {"text", "author"?} -> 201: an agent turn of
                                                 the session (GET /v1/sessions/{id} shows it)
    GET  /v1/admin/sessions/{id}            -> a conversation's transcript, products named
    GET  /v1/admin/metrics?from=&to=        -> conversations, turns, handoff_rate, ctr, ...,
                                                 daily (one row a day)
    GET  /v1/admin/metrics.csv?from=&to=    -> the daily rows, then the period's figures
    GET  /v1/admin/turns?q=&intent=&route=&from=&to=  -> the bot's turns, for review
    POST /v1/admin/turns/{id}/review        {"verdict": "good" | "wrong", "intent"?}

`POST /v1/sessions/{id}/release` (in `bot.channels.rest`) gives the conversation back to
the bot. A person who writes has taken the conversation over: the bot stays silent in it
until then. Stores on Chatwoot keep answering there (`bot.channels.chatwoot`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from bot.channels.access import Access, Caller
from bot.dialogue.service import ChatService
from bot.nlu.schema import INTENTS
from bot.redact import redact_email, redact_payment
from bot.settings import ID_PATTERN, MAX_MESSAGE_CHARS
from bot.shop import Shop
from bot.stores.metrics import bot_metrics, metrics_table
from bot.stores.reviews import InvalidReview, TurnReviews
from bot.stores.sessions import UnknownSession, iso_time

DEFAULT_PERIOD = timedelta(days=30)
NEW_PRODUCT_PERIOD = timedelta(days=14)  # products added this long before `to` count as new
TRANSCRIPT_TURNS = 200
Since = Annotated[str | None, Query(alias="from", description="ISO date or time")]
Until = Annotated[str | None, Query(alias="to", description="ISO date or time")]


class ReviewIn(BaseModel):
    verdict: str = Field(description="good, or wrong (then give the intent it should have had)")
    intent: str | None = Field(None, description="The right intent, for a wrong turn.")


class AgentMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="To the shopper.")
    author: str | None = Field(
        None, max_length=80, description="Shown with the message (default: 'Our team')."
    )


def admin_router(shop: Shop, chats: ChatService, access: Access, reviews: TurnReviews) -> APIRouter:
    router = APIRouter(dependencies=[Depends(access.admin_caller)], tags=["operators"])

    @router.get("/v1/admin/handoffs")
    def handoffs() -> dict:
        """Conversations waiting for a person, newest handoff first: why (asked, angry,
        failures, operator), since when (ISO 8601, UTC), how long, the shopper's last
        message."""
        now = time.time()
        waiting = sorted(chats.sessions.handed_off(), key=lambda s: -s["handed_off_at"])
        return {
            "sessions": [
                {
                    "session_id": item["session_id"],
                    "reason": item["reason"],
                    "since": iso_time(item["handed_off_at"]),
                    "waiting_s": round(now - item["handed_off_at"], 1),
                    "last_message": item["last_message"] or "",
                }
                for item in waiting
            ]
        }

    @router.post("/v1/sessions/{session_id}/messages", status_code=201)
    def agent_message(session_id: str, body: AgentMessageIn) -> dict:
        """A person's message to the shopper: an agent turn of the session, shown in its
        transcript (and the page on its next load). The bot stays silent in the
        conversation until it is released. Unknown session: 404."""
        if not re.match(ID_PATTERN, session_id):
            raise HTTPException(400, "invalid session id: up to 128 letters, digits and _ . : @ -")
        if not chats.sessions.exists(session_id):
            raise UnknownSession(session_id)
        text = redact_payment(" ".join(body.text.split()))
        author = " ".join((body.author or "").split()) or "Our team"
        sent = chats.sessions.add_agent_message(session_id, text, redact_email(author))
        return {"session_id": session_id, "author": author, "text": text, "ts": iso_time(sent)}

    @router.get("/v1/admin/sessions/{session_id}")
    def transcript(session_id: str) -> dict:
        """Any conversation, as an operator reads it: its turns (the shopper's message, the
        bot's or a person's reply, the intent and route, the products shown, by title and
        price), and whether a person has it. Unknown session: 404."""
        if not re.match(ID_PATTERN, session_id) or not chats.sessions.exists(session_id):
            raise UnknownSession(session_id)
        transcript = chats.sessions.transcript(session_id, limit=TRANSCRIPT_TURNS)
        turns = transcript["turns"]
        products = shop.products(sorted({pid for turn in turns for pid in turn["shown"]}))
        for turn in turns:
            turn["ts"] = iso_time(turn["ts"])
            turn["shown"] = [_shown(pid, products.get(pid)) for pid in turn["shown"]]
        return transcript

    @router.get("/v1/admin/turns")
    def turns(
        q: Annotated[str | None, Query(max_length=200, description="In message or reply")] = None,
        intent: Annotated[str | None, Query(max_length=64)] = None,
        route: Annotated[str | None, Query(max_length=64)] = None,
        start: Since = None,
        end: Until = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        """The bot's turns for review, newest first, filtered by text, intent, route and
        time: the shopper's message, the parse (intent, slots), the route, the reply, the
        policy sections cited, the sentences the check removed, and any review."""
        found = reviews.search(
            q, intent, route, _time(start, "from") if start else None,
            _time(end, "to") if end else None, limit,
        )  # fmt: skip
        for turn in found:
            turn["ts"] = iso_time(turn["ts"])
        return {"turns": found, "intents": sorted(INTENTS)}

    @router.post("/v1/admin/turns/{turn_id}/review")
    def review(
        turn_id: int,
        body: ReviewIn,
        caller: Caller = Depends(access.admin_caller),  # noqa: B008
    ) -> dict:
        """Mark a turn good, or wrong with the intent it should have had; `shopbot finetune
        build` trains on the verdicts. Unknown turn: 404; a bad verdict or intent: 422."""
        try:
            known = reviews.review(turn_id, body.verdict, body.intent, caller.owner, set(INTENTS))
        except InvalidReview as exc:
            raise HTTPException(422, str(exc)) from None
        if not known:
            raise HTTPException(404, f"no turn {turn_id}")
        return {"id": turn_id, "verdict": body.verdict, "intent": body.intent}

    def report(start: str | None, end: str | None) -> dict:
        until = _time(end, "to") if end else time.time()
        since = _time(start, "from") if start else until - DEFAULT_PERIOD.total_seconds()
        if since >= until:
            raise HTTPException(400, "'from' must be before 'to'")
        figures = bot_metrics(
            chats.sessions.activity(since, until),
            shop.events.counts(since, until),
            shop.events.daily_counts(since, until),
            shop.events.arm_counts(since, until),
            shop.settings.ranking_arms,
            shop.new_products(until - NEW_PRODUCT_PERIOD.total_seconds()),
            shop.events.impressions_by_product(since, until),
        )
        return {"from": iso_time(since), "to": iso_time(until), **figures}

    @router.get("/v1/admin/metrics")
    def metrics(start: Since = None, end: Until = None) -> dict:
        """What the bot did from `from` (default: 30 days before `to`) to `to` (default:
        now): conversations, turns, handoff rate and reasons, share resolved without a
        person, click-through, add-to-cart and purchase rates of shown products, likes and
        dislikes, top intents, unanswered messages by kind with examples, zero-result
        searches, `daily`: conversations, turns, handoffs, impressions, clicks and
        click-through for each UTC day, and `experiment`: each ranking arm's impressions,
        clicks and click-through with its 95% interval, and `cold_start`: how many products
        were added in the 14 days before `to`, how many of them were shown, and their share
        of the period's impressions."""
        return report(start, end)

    @router.get("/v1/admin/metrics.csv", response_class=PlainTextResponse)
    def metrics_csv(start: Since = None, end: Until = None) -> PlainTextResponse:
        """The same figures as a spreadsheet: the daily rows, then one row per figure."""
        figures = report(start, end)
        name = f"shopbot-metrics-{figures['from'][:10]}-{figures['to'][:10]}.csv"
        return PlainTextResponse(
            metrics_table(figures),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router


def _shown(product_id: str, product) -> dict:
    if product is None:  # removed from the catalog since
        return {"id": product_id, "title": None, "price": None}
    return {"id": product_id, "title": product.title, "price": product.price}


def _time(value: str, name: str) -> float:
    """An ISO date ("2026-12-01", midnight UTC) or time ("2026-12-01T09:30:00Z")."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            400, f"'{name}' must be an ISO date or time, e.g. 2026-12-01 or 2026-12-01T09:30Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
