"""The assistant behind every channel (page, widget, REST, help desk), turns on threads.

    chats = ChatService(settings, shop)
    chats.reply("red running shoes", session_id="s1")       # the structured reply (a Reply)
    for event in chats.stream("cheaper", session_id="s1"):  # {"type": "delta", "text": ..}
        ...                                                  # ... {"type": "reply", "reply": ..}

Each turn runs on a thread of its own; the LM they share runs every forward pass on its
scheduler's thread (`bot.lm.scheduler`), which runs the decoding steps of the replies
being written as one batched pass. Turns decide (parse, route, search) on that thread too,
one at a time and ahead of the replies being written, so a new shopper's first text comes
as soon as their turn alone can make it, and all the torch work runs on one thread. A turn runs to
the end and is saved even when its client disconnects, so no message is lost.

The turns of one session run one at a time, in the order their messages came, whatever
channel each came by: a second message waits until the first turn is saved, so it starts
from that turn's slots, shown products and order context. Other sessions run meanwhile.
Workers sharing a PostgreSQL database also wait for each other's turns of the session
(`bot.stores.session_locks`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.reply import Reply
from bot.settings import Settings
from bot.shop import Shop
from bot.stores.session_locks import session_locks
from bot.stores.sessions import OPEN_OWNER, SessionStore

log = logging.getLogger("shopbot.chat")

Event = dict[str, Any]
TURN_THREADS = 32  # turns in hand at once; more wait for a thread


class ChatUnavailable(RuntimeError):
    """The assistant could not be opened (e.g. the LM is missing); the message says why."""


@dataclass
class _Job:
    steps: Generator[Event]  # the turn's events, produced on its thread
    session: str | None = None  # a turn of this session; its next turn waits for it to end
    out: queue.Queue = field(default_factory=queue.Queue)


_END = object()


class ChatService:
    def __init__(self, settings: Settings, shop: Shop, lm: Any = None) -> None:
        self.settings = settings
        self.shop = shop
        self._lm = lm
        self._assistant: Any = None
        self._sessions: SessionStore | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._held: dict[str, deque[_Job]] = {}  # sessions with a turn running: the next ones
        self._session_locks = session_locks(settings.database_url)  # other workers' turns
        self._lock = threading.Lock()
        self._opening = threading.Lock()

    # -- the turns' threads ----------------------------------------------------------------

    def _submit(self, steps: Generator[Event], session: str | None = None) -> queue.Queue:
        """Run a turn on a thread of its own, or after the turn of its session in hand."""
        job = _Job(steps, session)
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="shopbot-turn")
            if session is not None and session in self._held:
                self._held[session].append(job)
                return job.out
            if session is not None:
                self._held[session] = deque()
            self._threads.submit(self._run, job)
        return job.out

    def _run(self, job: _Job | None) -> None:
        """Run a turn, then the next ones of its session that came meanwhile, in order."""
        while job is not None:
            try:
                with self._session_locks.hold(job.session) if job.session else nullcontext():
                    for event in job.steps:
                        job.out.put(event)
            except BaseException as exc:  # handed to the caller, raised there
                job.out.put(exc)
            finally:
                job.out.put(_END)
            job = self._next_of(job.session)

    def _next_of(self, session: str | None) -> _Job | None:
        if session is None:
            return None
        with self._lock:
            waiting = self._held.get(session)
            if waiting:
                return waiting.popleft()
            self._held.pop(session, None)
            return None

    @staticmethod
    def _results(out: queue.Queue) -> Iterator[Any]:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _assistant_now(self) -> Any:
        """The assistant, opened on first use, its LM loaded on the scheduler's thread."""
        with self._opening:
            if self._assistant is None:
                from bot.dialogue.engine import Assistant
                from bot.lm.loading import LanguageModelError
                from bot.lm.scheduler import PassScheduler

                scheduler = PassScheduler()

                def opened() -> Any:
                    return Assistant.open(self.settings, self.shop, self._lm, scheduler)

                try:
                    self._assistant = scheduler.call(opened)
                except LanguageModelError as exc:
                    scheduler.close()
                    raise ChatUnavailable(str(exc)) from exc
            return self._assistant

    # -- what channels call ----------------------------------------------------------------

    def open(self) -> Any:
        """Load the LM and open the assistant (once)."""
        return self._assistant_now()

    def warm_up(self) -> None:
        """Start loading the LM and the search now, in the background, so the first shopper
        does not wait; a load failure is logged here and reported to the first chat request."""

        def steps() -> Generator[Event]:
            try:
                assistant = self._assistant_now()
                assistant.scheduler.call(assistant.warm_up)
            except Exception as exc:  # the first turn raises it again, with its message
                log.warning("the assistant could not be opened: %s", exc)
            yield from ()

        self._submit(steps())

    def stream(
        self,
        message: Any,
        session_id: str,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> Iterator[Event]:
        """A turn's events as they happen: `start` (once parsed and routed), `delta` pieces
        of reply text, then `reply` (its "reply" is the structured `Reply`). A failure inside
        the turn is raised from this iterator: UnknownSession when `owner` (the caller, see
        `bot.channels.access`) may not use the session."""

        def steps() -> Generator[Event]:
            assistant = self._assistant_now()
            # Decided on the LM's thread, one turn at a time and ahead of the replies being
            # written: the parse, the routing and the search, torch work all of it.
            turn = assistant.scheduler.call(
                lambda: assistant.start_turn(message, session_id, shopper_id, owner)
            )
            yield {"type": "start", "route": turn.route, "intent": turn.parse.intent}
            for piece in assistant.stream_reply(turn):
                if piece:
                    yield {"type": "delta", "text": piece}
            yield {"type": "reply", "reply": turn.to_reply()}

        return self._results(self._submit(steps(), session=session_id))

    def reply(
        self,
        message: Any,
        session_id: str,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> Reply:
        """One whole turn; the structured reply."""
        events = self.stream(message, session_id, shopper_id, owner)
        return [event["reply"] for event in events if event["type"] == "reply"][-1]

    @property
    def sessions(self) -> SessionStore:
        """The conversations' store, for reading and deleting without loading the LM."""
        with self._lock:
            if self._sessions is None:
                self._sessions = SessionStore(self.settings.sessions_path)
            return self._sessions

    def close(self) -> None:
        """Finish the turns in hand (and those waiting behind them), then close."""
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        if self._assistant is not None:
            self._assistant.close()
        if self._sessions is not None:
            self._sessions.close()
        self._session_locks.close()
