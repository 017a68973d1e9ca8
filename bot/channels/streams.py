"""Turn events as HTTP streams: a turn started before the response, and server-sent events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from bot.stores.sessions import iso_time

log = logging.getLogger("shopbot.server")


def started(events: Iterator[dict]) -> Iterator[dict]:
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


POLL_SECONDS = 1.0  # how often a person-messages stream looks for new ones
KEEPALIVE_SECONDS = 15.0  # a comment this often, so proxies keep the stream open
MAX_STREAM_SECONDS = 3600.0


async def person_messages(
    sessions: Any, session_id: str, since: float, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Server-sent events of a conversation people answer: `agent` {"text", "author", "ts"}
    for each message a person writes after `since`, then `released` once a person has had
    the conversation and the bot answers again (the stream ends there, or after an hour).
    It reads the session store, so it works whichever worker the person wrote through."""
    opened = quiet = time.time()
    taken = False
    while time.time() - opened < MAX_STREAM_SECONDS and not await disconnected():
        messages = await run_in_threadpool(sessions.agent_messages_since, session_id, since)
        for message in messages:
            since, quiet = message["ts"], time.time()
            data = {"text": message["text"], "author": message["author"]}
            data["ts"] = iso_time(message["ts"])
            yield f"event: agent\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        handed_off = (await run_in_threadpool(sessions.state, session_id)).handed_off
        if taken and not handed_off:
            yield "event: released\ndata: {}\n\n"
            return
        taken = taken or handed_off
        if time.time() - quiet >= KEEPALIVE_SECONDS:
            quiet = time.time()
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL_SECONDS)


def sse(events: Iterator[dict]) -> Iterator[str]:
    try:
        for event in events:
            kind = event.pop("type")
            data = event["reply"].model_dump(mode="json") if kind == "reply" else event
            yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    except Exception:
        log.exception("chat stream failed")
        yield 'event: error\ndata: {"detail": "the assistant failed on this message"}\n\n'
