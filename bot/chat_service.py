"""The assistant behind every channel (page, widget, REST, help desk), one turn at a time.

    chats = ChatService(settings, shop)
    chats.reply("red running shoes", session_id="s1")          # the structured reply
    for event in chats.stream("cheaper", session_id="s1"):     # {"type": "delta", "text": ..}
        ...                                                     # ... then {"type": "reply", ..}

Two CPU cores run one LM pass at a time anyway, so turns go through one worker thread, in
the order they arrive: no two turns fight over the cores, and the LM's caches are never
shared between threads. A turn runs to the end and is logged even when the client that
asked for it disconnects, so no message is lost.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.sessions import SessionStore
from bot.settings import Settings
from bot.shop import Shop

log = logging.getLogger("shopbot.chat")

Event = dict[str, Any]


class ChatUnavailable(RuntimeError):
    """The assistant could not be opened (e.g. the LM is missing); the message says why."""


class ChatService:
    def __init__(self, settings: Settings, shop: Shop, lm: Any = None) -> None:
        self.settings = settings
        self.shop = shop
        self._lm = lm
        self._assistant: Any = None
        self._sessions: SessionStore | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopbot-turn")

    def open(self) -> Any:
        """Load the LM and open the assistant (on the worker thread; once)."""
        return self._worker.submit(self._open).result()

    def warm_up(self) -> None:
        """Start loading the LM now, in the background, so the first shopper does not wait;
        a load failure is logged here and reported to the first chat request."""

        def load() -> None:
            try:
                self._open()
            except Exception as exc:  # the first turn raises it again, with its message
                log.warning("the assistant could not be opened: %s", exc)

        self._worker.submit(load)

    def _open(self) -> Any:
        if self._assistant is None:
            from bot.dialogue import Assistant
            from bot.lm import LanguageModelError

            try:
                self._assistant = Assistant.open(self.settings, self.shop, lm=self._lm)
            except LanguageModelError as exc:
                raise ChatUnavailable(str(exc)) from exc
        return self._assistant

    @property
    def sessions(self) -> SessionStore:
        """The conversations' store, for reading and deleting without loading the LM."""
        if self._sessions is None:
            self._sessions = SessionStore(Path(self.settings.data_dir) / "sessions.sqlite")
        return self._sessions

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self._assistant is not None:
            self._assistant.close()
        if self._sessions is not None:
            self._sessions.close()

    def call(self, job: Callable[[Any], Any]) -> Any:
        """Run `job(assistant)` on the worker thread and return its result."""
        return self._worker.submit(lambda: job(self._open())).result()

    def reply(self, message: Any, session_id: str, shopper_id: str | None = None) -> dict:
        """One whole turn; the structured reply."""
        return self.call(lambda a: a.respond(message, session_id, shopper_id).to_dict())

    def stream(
        self, message: Any, session_id: str, shopper_id: str | None = None
    ) -> Iterator[Event]:
        """A turn's events as they happen: `delta` pieces of text, then the `reply`.

        A failure inside the turn comes out as the exception, raised from this iterator.
        """
        events: queue.Queue[Event | BaseException] = queue.Queue()

        def run(assistant: Any) -> None:
            turn = assistant.start_turn(message, session_id, shopper_id)
            events.put({"type": "start", "route": turn.route, "intent": turn.parse.intent})
            for piece in turn.stream():
                events.put({"type": "delta", "text": piece})
            events.put({"type": "reply", **turn.to_dict()})

        future: Future = self._worker.submit(lambda: run(self._open()))
        future.add_done_callback(lambda done: events.put(done.exception() or _END))
        while True:
            event = events.get()
            if event is _END:
                return
            if isinstance(event, BaseException):
                raise event
            yield event


_END: Event = {"type": "end"}
