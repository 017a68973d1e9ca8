"""The operators' REST routes (admin key; 401 without one, 403 with a chat key): the inbox
of conversations waiting for a person, a person's messages to the shopper, and what the
bot did over a period.

    GET  /v1/admin/handoffs                 -> {"sessions": [{session_id, reason, since,
                                                 waiting_s, last_message}]}, newest first
    POST /v1/sessions/{id}/messages         {"text", "author"?} -> 201: an agent turn of
                                                 the session (GET /v1/sessions/{id} shows it)
    GET  /v1/admin/metrics?from=&to=        -> conversations, turns, handoff_rate, ctr, ...

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
from pydantic import BaseModel, Field

from bot.channels.access import Access
from bot.dialogue.service import ChatService
from bot.redact import redact_email, redact_payment
from bot.settings import ID_PATTERN, MAX_MESSAGE_CHARS
from bot.shop import Shop
from bot.stores.metrics import bot_metrics
from bot.stores.sessions import UnknownSession

DEFAULT_PERIOD = timedelta(days=30)


class AgentMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="To the shopper.")
    author: str | None = Field(
        None, max_length=80, description="Shown with the message (default: 'Our team')."
    )


def admin_router(shop: Shop, chats: ChatService, access: Access) -> APIRouter:
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
                    "since": _iso(item["handed_off_at"]),
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
        return {"session_id": session_id, "author": author, "text": text, "ts": _iso(sent)}

    @router.get("/v1/admin/metrics")
    def metrics(
        start: Annotated[str | None, Query(alias="from", description="ISO date or time")] = None,
        end: Annotated[str | None, Query(alias="to", description="ISO date or time")] = None,
    ) -> dict:
        """What the bot did from `from` (default: 30 days before `to`) to `to` (default:
        now): conversations, turns, handoff rate and reasons, share resolved without a
        person, click-through, add-to-cart and purchase rates of shown products, likes and
        dislikes, top intents, unanswered messages by kind with examples, zero-result
        searches."""
        until = _time(end, "to") if end else time.time()
        since = _time(start, "from") if start else until - DEFAULT_PERIOD.total_seconds()
        if since >= until:
            raise HTTPException(400, "'from' must be before 'to'")
        report = bot_metrics(
            chats.sessions.activity(since, until), shop.events.counts(since, until)
        )
        return {"from": _iso(since), "to": _iso(until), **report}

    return router


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


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
