"""One LM shared by concurrent turns: every forward pass runs on the scheduler's thread, and
the decoding steps of the sequences being written run together as one batched pass.

    scheduler = PassScheduler()
    decoder = Decoder(lm, scheduler=scheduler)   # its passes now go through the scheduler
    ...
    scheduler.close()

As TGI's router does it: the turns' threads hand their passes in and wait; the scheduler
runs them one batch at a time, so no two passes fight over the cores and a model's caches
are only ever touched by one thread at a time. Other torch work of the LM runs there too
(`call`: loading it, deciding a turn; a pass's argmax is taken there): on a CPU, torch run
from several threads makes every small operation about twice as slow, since each thread
gets an OpenMP pool of its own and, with more pool threads than cores, none spin-waits.

Reading a prompt (a parse, a reply's prefill) and a `call` go first and alone, oldest
first: a new shopper's text starts soon, and a prompt keeps the cores busy computing, so
batching prompts would save nothing. While a thread is in `first` (a reply writing its first
sentence), only its passes run. Decoding steps, each a few tokens, are bound by reading the
weights: the scheduler waits a moment for every sequence that is decoding to hand in its
next step, then runs them all in one pass (`feed_together`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

from bot.lm.decoding import LMPass, best_tokens, feed_together

log = logging.getLogger("shopbot.lm")

GATHER_SECONDS = 0.01  # how long a decoding step waits for the others to join its batch


class _Job:
    """A call to run on the scheduler's thread (`PassScheduler.call`)."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.result: Any = None
        self.error: BaseException | None = None
        self.done: threading.Event | None = None
        self.thread = 0

    def run(self) -> None:
        try:
            self.result = self.job()
        except BaseException as exc:  # raised again in the caller's thread
            self.error = exc
        finally:
            self.done.set()


class PassScheduler:
    """Runs the forward passes of every decoder built with it; see the module docstring."""

    def __init__(self, gather_seconds: float = GATHER_SECONDS) -> None:
        self.gather_seconds = gather_seconds
        self._first: Counter[int] = Counter()  # threads in `first`: only their passes run
        self._changed = threading.Condition()
        self._prompts: deque[LMPass] = deque()  # prompt passes, oldest first, one at a time
        self._steps: list[LMPass] = []  # decoding steps waiting to run together
        self._decoding = 0  # sequences decoding now: each will hand in its next step soon
        self._thread: threading.Thread | None = None
        self._ident: int | None = None  # the thread's, kept while it finishes after close
        self._closing = False

    def run(self, step: LMPass) -> Any:
        """Run a pass (with others, when it is a decoding step) and return its
        log-probabilities; blocks the calling thread until it has run. On the scheduler's
        own thread (inside `call`) it runs at once."""
        if self._on_own_thread():
            step.logprobs = step.decoder.forward(step.token_ids, step.keep)
            step.best = best_tokens(step.logprobs)
            return step.logprobs
        self._hand_in(step)
        if step.error is not None:
            raise step.error
        return step.logprobs

    def call(self, job: Callable[[], Any]) -> Any:
        """Run `job()` on the scheduler's thread, as one prompt pass, and return what it
        returns (or raise what it raises). For the LM's other torch work (loading it, a
        turn's parse and search): one thread running all of it is much faster on a CPU than
        several, whose OpenMP thread pools slow each other's small operations down."""
        if self._on_own_thread():
            return job()
        task = _Job(job)
        self._hand_in(task)
        if task.error is not None:
            raise task.error
        return task.result

    def _hand_in(self, item: Any) -> None:
        item.done, item.thread = threading.Event(), threading.get_ident()
        with self._changed:
            if self._closing:
                raise RuntimeError("the LM scheduler is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="shopbot-lm", daemon=True)
                self._thread.start()
                self._ident = self._thread.ident
            (self._steps if getattr(item, "decoding", False) else self._prompts).append(item)
            self._changed.notify_all()
        item.done.wait()

    def _on_own_thread(self) -> bool:
        return self._ident == threading.get_ident()

    @contextlib.contextmanager
    def decoding(self) -> Iterator[None]:
        """While a sequence decodes: its steps are waited for, to run in one batch."""
        with self._changed:
            self._decoding += 1
        try:
            yield
        finally:
            with self._changed:
                self._decoding -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def first(self) -> Iterator[None]:
        """While a reply writes its first sentence on this thread: only this thread's passes
        and calls run (and those of others in `first`), so a new shopper's first text is not
        slowed by the replies already streaming. Its decoder must be `urgent`, so that its
        steps are run alone rather than held for a batch."""
        thread = threading.get_ident()
        with self._changed:
            self._first[thread] += 1
        try:
            yield
        finally:
            with self._changed:
                self._first[thread] -= 1
                if not self._first[thread]:
                    del self._first[thread]
                self._changed.notify_all()

    def close(self) -> None:
        """Run what was handed in, then stop the thread; later passes raise."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=60)

    def _next_batch(self) -> list[LMPass] | None:
        """The passes to run next (None: closed and nothing left). Holds the condition."""
        while (prompt := self._runnable_prompt()) is None and (not self._steps or self._first):
            if self._closing and not self._steps and not self._prompts:
                return None
            self._changed.wait()
        if prompt is None:  # a moment for every decoding sequence to hand in its step
            deadline = time.monotonic() + self.gather_seconds
            while (prompt := self._runnable_prompt()) is None and (
                len(self._steps) < self._decoding and not self._first
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        if prompt is not None:
            self._prompts.remove(prompt)
            return [prompt]
        if self._first:  # someone went first meanwhile: its passes come next
            return []
        batch, self._steps = self._steps, []
        return batch

    def _runnable_prompt(self) -> LMPass | None:
        """The oldest prompt pass that may run now: any, unless some threads go `first`."""
        return next(
            (step for step in self._prompts if not self._first or step.thread in self._first),
            None,
        )

    def _work(self) -> None:
        while True:
            with self._changed:
                batch = self._next_batch()
            if batch is None:
                return
            if batch and isinstance(batch[0], _Job):
                batch[0].run()
                continue
            try:
                feed_together(batch)
            except Exception:  # run each alone, so one bad pass fails only its own turn
                log.exception("a batched LM pass failed; running its passes one by one")
                for step in batch:
                    if step.logprobs is None:
                        try:
                            step.logprobs = step.decoder.forward(step.token_ids, step.keep)
                        except Exception as exc:
                            step.error = exc
            for step in batch:
                if step.logprobs is not None:  # the argmax too, here: see Decoder._decode
                    step.best = best_tokens(step.logprobs)
                step.done.set()
