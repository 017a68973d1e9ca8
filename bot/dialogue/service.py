"""The assistant behind every channel (page, widget, REST, help desk), one LM step at a time.

    chats = ChatService(settings, shop)
    chats.reply("red running shoes", session_id="s1")          # the structured reply
    for event in chats.stream("cheaper", session_id="s1"):     # {"type": "delta", "text": ..}
        ...                                                     # ... then {"type": "reply", ..}

Two CPU cores run one LM pass at a time anyway, so all turns run on one worker thread: no
two turns fight over the cores, and the LM's caches are never shared between threads. The
worker interleaves turns a step at a time (a step is the parse and routing, the reply
prompt's prefill, or one LM pass): a new message is parsed and its first text sent before
the turns already streaming take their next step, so a shopper sees text start soon even
when others are mid-reply. The decoding passes of the replies being written run as one
batched pass (`feed_together`; the README has what it saves). A turn runs to the end and
is saved even when its client disconnects, so no message is lost.

The turns of one session run one at a time, in the order their messages came, whatever
channel each came by: a second message waits until the first turn is saved, so it starts
from that turn's slots, shown products and order context. Other sessions run meanwhile.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.lm.decoding import LMPass, feed_together
from bot.settings import Settings
from bot.shop import Shop
from bot.stores.sessions import OPEN_OWNER, SessionStore

log = logging.getLogger("shopbot.chat")

Event = dict[str, Any]


class ChatUnavailable(RuntimeError):
    """The assistant could not be opened (e.g. the LM is missing); the message says why."""


@dataclass
class _Job:
    steps: Generator[Event]  # each next() is one step on the worker; its events go out
    out: queue.Queue = field(default_factory=queue.Queue)
    streaming: bool = False  # has yielded reply text: now served in turn with the others
    lm_pass: LMPass | None = None  # the LM pass it waits on, run in a batch with others'
    session: str | None = None  # a turn of this session; its next turn waits for it to end


_END = object()
FINAL_EVENTS = ("reply", "result")


class ChatService:
    def __init__(self, settings: Settings, shop: Shop, lm: Any = None) -> None:
        self.settings = settings
        self.shop = shop
        self._lm = lm
        self._assistant: Any = None
        self._sessions: SessionStore | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the worker ------------------------------------------------------------------------

    def _submit(self, steps: Generator[Event], session: str | None = None) -> queue.Queue:
        job = _Job(steps, session=session)
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="shopbot-turns")
                self._worker.daemon = True
                self._worker.start()
            self._jobs.put(job)
        return job.out

    def _work(self) -> None:
        waiting: deque[_Job] = deque()  # no reply text yet: served first, oldest first
        streaming: deque[_Job] = deque()  # writing their replies: one step each in turn
        # A session's turns run one at a time, in the order they came: a second message to
        # a session waits until the first is saved, so it starts from that turn's state.
        held: dict[str, deque[_Job]] = {}
        stopping = False

        def admit(job: _Job) -> None:
            if job.session is None:
                waiting.append(job)
            elif job.session in held:
                held[job.session].append(job)
            else:
                held[job.session] = deque()
                waiting.append(job)

        def ended(job: _Job) -> None:
            if job.session is None:
                return
            queued = held.get(job.session)
            if queued:
                waiting.append(queued.popleft())
            else:
                held.pop(job.session, None)

        while True:
            block = not waiting and not streaming
            if block and stopping:
                return
            while True:
                try:
                    job = self._jobs.get(block=block)
                except queue.Empty:
                    break
                if job is None:  # close(): finish the turns in hand, then stop
                    stopping = True
                    break
                admit(job)
                block = False
            if not waiting and not streaming:
                continue
            if not waiting and streaming[0].lm_pass is not None:
                # the next reply waits on its LM pass: run every waiting pass as one batch
                ready = [job for job in streaming if job.lm_pass is not None]
                try:
                    feed_together([job.lm_pass for job in ready])
                except Exception:  # each stream runs its own pass again when it resumes
                    log.exception("a batched LM pass failed")
                for job in ready:
                    job.lm_pass = None
            line = waiting if waiting else streaming
            job = line.popleft()
            try:
                event = next(job.steps)
            except StopIteration:
                job.out.put(_END)
                ended(job)
                continue
            except BaseException as exc:  # handed to the caller, raised there
                job.out.put(exc)
                ended(job)
                continue
            kind = event.get("type")
            job.lm_pass = event.get("lm_pass") if kind == "tick" else None
            if kind != "tick":  # a tick is a step that produced no text: nothing to send
                job.out.put(event)
            if kind in FINAL_EVENTS:  # done: no need to wait for its generator to return
                job.steps.close()
                job.out.put(_END)
                ended(job)
                continue
            job.streaming = job.streaming or kind == "delta"
            (streaming if job.streaming else waiting).append(job)
            if line is waiting and not job.streaming:
                waiting.rotate(1)  # keep its place at the front until it streams

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
        """The assistant, opened on first use (on the worker thread)."""
        if self._assistant is None:
            from bot.dialogue.engine import Assistant
            from bot.lm.loading import LanguageModelError

            try:
                self._assistant = Assistant.open(self.settings, self.shop, lm=self._lm)
            except LanguageModelError as exc:
                raise ChatUnavailable(str(exc)) from exc
        return self._assistant

    # -- what channels call ----------------------------------------------------------------

    def call(self, job: Callable[[Any], Any]) -> Any:
        """Run `job(assistant)` on the worker, as one step, and return its result."""

        def steps() -> Generator[Event]:
            yield {"type": "result", "value": job(self._assistant_now())}

        return next(self._results(self._submit(steps())))["value"]

    def open(self) -> Any:
        """Load the LM and open the assistant (once)."""
        return self.call(lambda assistant: assistant)

    def warm_up(self) -> None:
        """Start loading the LM and the search now, in the background, so the first shopper
        does not wait; a load failure is logged here and reported to the first chat request."""

        def steps() -> Generator[Event]:
            try:
                self._assistant_now().warm_up()
            except Exception as exc:  # the first turn raises it again, with its message
                log.warning("the assistant could not be opened: %s", exc)
            yield {"type": "result", "value": None}

        self._submit(steps())

    def stream(
        self,
        message: Any,
        session_id: str,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> Iterator[Event]:
        """A turn's events as they happen: `start` (once parsed and routed), `delta` pieces
        of reply text, then `reply` (the structured reply). A failure inside the turn is
        raised from this iterator: UnknownSession when `owner` (the caller, see
        `bot.channels.access`) may not use the session."""

        def steps() -> Generator[Event]:
            assistant = self._assistant_now()
            turn = assistant.start_turn(message, session_id, shopper_id, owner)
            yield {"type": "start", "route": turn.route, "intent": turn.parse.intent}
            for piece in assistant.stream_reply(turn, ticks=True):
                if isinstance(piece, str) and piece:
                    yield {"type": "delta", "text": piece}
                else:  # the LM's next pass, or "": nothing to send yet
                    yield {"type": "tick", "lm_pass": piece or None}
            yield {"type": "reply", **turn.to_dict()}

        return self._results(self._submit(steps(), session=session_id))

    def reply(
        self,
        message: Any,
        session_id: str,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> dict:
        """One whole turn; the structured reply."""
        final: dict = {}
        for event in self.stream(message, session_id, shopper_id, owner):
            if event["type"] == "reply":
                final = {key: value for key, value in event.items() if key != "type"}
        return final

    @property
    def sessions(self) -> SessionStore:
        """The conversations' store, for reading and deleting without loading the LM."""
        with self._lock:
            if self._sessions is None:
                self._sessions = SessionStore(Path(self.settings.data_dir) / "sessions.sqlite")
            return self._sessions

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join(timeout=120)
        if self._assistant is not None:
            self._assistant.close()
        if self._sessions is not None:
            self._sessions.close()
