"""Turn events as HTTP streams: a turn started before the response, and server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

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


def sse(events: Iterator[dict]) -> Iterator[str]:
    try:
        for event in events:
            kind = event.pop("type")
            data = event["reply"].model_dump(mode="json") if kind == "reply" else event
            yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    except Exception:
        log.exception("chat stream failed")
        yield 'event: error\ndata: {"detail": "the assistant failed on this message"}\n\n'
