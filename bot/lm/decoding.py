"""Token-level decoding on a loaded LM: constrained choice among fixed strings, and streaming.

A plain loop over the model with a KV cache, so the intent parser can force its output into
a fixed set of intent names (a trie of their tokens) and the reply writer can stream text
as it is generated. Greedy decoding throughout: parses must be deterministic, and replies
are grounded in records, not creative.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.lm.loading import LoadedLM


@dataclass
class TokenTrie:
    """The token sequences of a set of strings, to decode exactly one of them."""

    children: dict[int, TokenTrie] = field(default_factory=dict)
    value: str | None = None

    @classmethod
    def build(cls, tokenizer: Any, strings: Sequence[str]) -> TokenTrie:
        root = cls()
        for string in strings:
            node = root
            for token in tokenizer.encode(string, add_special_tokens=False):
                if node.value is not None:
                    raise ValueError(f"{node.value!r} is a token prefix of {string!r}")
                node = node.children.setdefault(token, cls())
            if node.children or node.value is not None:
                raise ValueError(f"{string!r} shares all its tokens with another string")
            node.value = string
        return root


Drafter = Callable[[Sequence[int]], list[int]]
"""Proposes the tokens likely to follow the ones a stream has produced so far."""


class PromptPrefix:
    """The KV cache of a prompt opening that many sequences share (a system prompt).

    Computed by the first sequence that starts with `token_ids` (cut from its prompt's cache,
    so no extra pass), then copied into each later one: they read only the rest of their
    prompt. The cache of a causal LM's first n tokens depends on those tokens alone, so
    this changes no output (in bf16, up to the rounding of a differently shaped pass).
    """

    def __init__(self, token_ids: Sequence[int]) -> None:
        self.token_ids = list(token_ids)
        self.cache: Any = None
        self._lock = threading.Lock()

    def fits(self, token_ids: Sequence[int]) -> bool:
        """Whether a prompt starts with this prefix and goes on past it."""
        n = len(self.token_ids)
        return 0 < n < len(token_ids) and list(token_ids[:n]) == self.token_ids

    def keep(self, cache: Any, length: int) -> None:
        """Keep a copy of the prefix's part of `cache`, which holds `length` tokens."""
        if self.cache is None:
            snapshot = copy.deepcopy(cache)
            snapshot.crop(len(self.token_ids) - length)  # negative: drop that many at the end
            with self._lock:
                if self.cache is None:
                    self.cache = snapshot


@dataclass
class LMPass:
    """A forward pass a decoder needs: `token_ids` to append, the log-probabilities after the
    last `keep` of them to return. A `PassScheduler` runs it (decoding steps in a batch with
    other sequences', `feed_together`) and sets `logprobs`, or `error` when it failed."""

    decoder: Decoder
    token_ids: list[int]
    keep: int
    decoding: bool = False  # a decoding step (a few tokens), not a prompt
    logprobs: Any = None
    best: list[tuple[int, float]] | None = None  # `best_tokens` of logprobs, made alongside
    error: Exception | None = None
    done: Any = None  # the scheduler's signal that it has run
    thread: int = 0  # the thread that waits on it


def feed_together(passes: Sequence[LMPass]) -> None:
    """Run the passes of several decoders as one batched forward pass, with the same effect
    on each as its own `Decoder.feed`: its tokens and cache extended, its log-probabilities
    set. Decoding on a CPU is bound by reading the weights, so a pass for several sequences
    costs much less than one pass each, copying the caches in and out included (the README
    has the figures of `benchmarks/batched_decoding.py`).

    Caches of different lengths are left-padded and new tokens of different counts
    right-padded; the attention mask hides both and each sequence keeps its own positions.
    """
    passes = [step for step in passes if step.logprobs is None]
    if len(passes) <= 1 or any(p.decoder._cache is None for p in passes):
        for step in passes:
            step.logprobs = step.decoder.forward(step.token_ids, step.keep)
        return
    import torch
    from transformers import DynamicCache

    first = passes[0].decoder
    lengths = [p.decoder._cache.get_seq_length() for p in passes]
    counts = [len(p.token_ids) for p in passes]
    longest, widest = max(lengths), max(counts)
    layers = []
    for index in range(len(first._cache.layers)):
        keys, values = [], []
        for step, length in zip(passes, lengths, strict=True):
            layer = step.decoder._cache.layers[index]
            keys.append(torch.nn.functional.pad(layer.keys, (0, 0, longest - length, 0)))
            values.append(torch.nn.functional.pad(layer.values, (0, 0, longest - length, 0)))
        layers.append((torch.cat(keys), torch.cat(values)))
    ids = torch.zeros(len(passes), widest, dtype=torch.long)
    mask = torch.zeros(len(passes), longest + widest, dtype=torch.long)
    positions = torch.zeros(len(passes), widest, dtype=torch.long)
    for row, (step, length, count) in enumerate(zip(passes, lengths, counts, strict=True)):
        ids[row, :count] = torch.tensor(step.token_ids)
        mask[row, longest - length : longest + count] = 1
        positions[row] = torch.arange(length, length + widest)
    kwargs = {first._cache_arg: DynamicCache(ddp_cache_data=layers), "use_cache": True}
    with torch.inference_mode():
        out = first.lm.model(
            input_ids=ids.to(first.lm.device),
            attention_mask=mask.to(first.lm.device),
            position_ids=positions.to(first.lm.device),
            logits_to_keep=widest,
            **kwargs,
        )
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    for row, (step, length, count) in enumerate(zip(passes, lengths, counts, strict=True)):
        kept = slice(longest - length, longest + count)
        decoder = step.decoder
        decoder._cache = DynamicCache(
            ddp_cache_data=[
                (layer.keys[row : row + 1, :, kept].clone(),
                 layer.values[row : row + 1, :, kept].clone())
                for layer in cache.layers
            ]
        )  # fmt: skip
        decoder.tokens.extend(step.token_ids)
        decoder.passes += 1
        logprobs = torch.log_softmax(out.logits[row, :count].float(), dim=-1)
        step.logprobs = logprobs[-1] if step.keep == 1 else logprobs[-step.keep :]


class Decoder:
    """Runs one sequence through the model, one step at a time, keeping its KV cache.

    `stream` decodes greedily with drafts: a drafter proposes the tokens it expects next
    (by default prompt lookup: when the last two tokens also occur in the text so far, the
    prompt included, the tokens that followed them there), they are checked in one forward
    pass, and the longest prefix the model agrees with is kept. The output is greedy
    decoding's (in fp32 exactly; in bf16 up to rounding, which differs a little between a
    one-token and a several-token pass), but text copied from the prompt costs one pass for
    several tokens: decoding on CPU is bound by reading the weights, not by the number of
    positions in a pass.

    With a `scheduler` (`bot.lm.scheduler.PassScheduler`), every pass runs on its thread,
    decoding steps batched with those of other sequences; without one, on the caller's.
    """

    def __init__(self, lm: LoadedLM, draft_tokens: int = 6, scheduler: Any = None) -> None:
        import torch

        self.lm = lm
        self.draft_tokens = draft_tokens
        self.scheduler = scheduler
        self.urgent = False  # its decoding steps run first and alone, as prompts do
        self._torch = torch
        self._cache = None
        self.tokens: list[int] = []
        self.passes = 0
        params = inspect.signature(lm.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def feed(self, token_ids: Sequence[int], keep: int = 1, decoding: bool = False) -> Any:
        """Append tokens to the sequence; returns the log-probabilities of the next token
        (with keep=n, those after each of the last n tokens, shape (n, vocab)). `decoding`:
        a step of `stream`, which the scheduler may batch with other sequences' steps."""
        if self.scheduler is None:
            return self.forward(token_ids, keep)
        return self.scheduler.run(LMPass(self, list(token_ids), keep, decoding))

    def forward(self, token_ids: Sequence[int], keep: int = 1) -> Any:
        """`feed`, run here and now, alone (what a scheduler calls)."""
        torch = self._torch
        ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self.lm.device)
        kwargs = {self._cache_arg: self._cache, "use_cache": True, "logits_to_keep": keep}
        with torch.inference_mode():
            out = self.lm.model(input_ids=ids, **kwargs)
        self._cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        self.tokens.extend(token_ids)
        self.passes += 1
        logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
        return logprobs[-1] if keep == 1 else logprobs[-keep:]

    def prefill(self, token_ids: Sequence[int], prefix: PromptPrefix | None = None) -> Any:
        """Feed a prompt (the sequence must be empty); with a `prefix` it starts with, that
        part's cache is copied in rather than computed (after the first time)."""
        if prefix is None or not prefix.fits(token_ids):
            return self.feed(token_ids)
        if prefix.cache is None:
            logprobs = self.feed(token_ids)
            prefix.keep(self._cache, len(self.tokens))
            return logprobs
        self._cache = copy.deepcopy(prefix.cache)
        self.tokens = list(prefix.token_ids)
        return self.feed(token_ids[len(prefix.token_ids) :])

    def _forget(self, count: int) -> None:
        """Drop the last `count` tokens from the sequence and its cache."""
        if count <= 0:
            return
        self._cache.crop(-count)  # a negative length removes that many from the end
        del self.tokens[-count:]

    def choose(self, trie: TokenTrie, logprobs: Any) -> tuple[str, float, list[int]]:
        """Decode exactly one of the trie's strings, greedily; returns (string, log-prob of
        the choices made, its last tokens, not fed yet). Tokens that are the only way on are
        not asked for: they are fed together in one step with the choice before them. The
        last ones are left to the caller: `stream(lead=...)` feeds them with its first draft.
        """
        node, total, pending = trie, 0.0, []
        while node.children:
            if len(node.children) > 1:
                if pending:
                    logprobs, pending = self.feed(pending), []
                token = max(node.children, key=lambda t: float(logprobs[t]))
                total += float(logprobs[token])
            else:
                token = next(iter(node.children))
            pending.append(token)
            node = node.children[token]
        return node.value or "", total, pending

    def lookup_draft(self, produced: Sequence[int] = ()) -> list[int]:
        """What followed the latest earlier occurrence of the last two tokens, if any."""
        tokens = self.tokens
        if len(tokens) < 3 or not self.draft_tokens:
            return []
        tail = tokens[-2:]
        for start in range(len(tokens) - 3, -1, -1):
            if tokens[start : start + 2] == tail:
                return tokens[start + 2 : start + 2 + self.draft_tokens]
        return []

    def stream(
        self,
        logprobs: Any,
        max_new_tokens: int,
        stop_ids: set[int],
        drafter: Drafter | None = None,
        lead: Sequence[int] = (),
    ) -> Iterator[tuple[int, float]]:
        """Greedy tokens, each with its log-probability, until a stop token or the limit.

        `drafter(tokens produced so far)` proposes what follows (default: `lookup_draft`);
        `lead` are tokens decided but not fed yet (from `choose`), not yielded again: they go
        into the first pass with the first draft, and `logprobs` may then be None. Under a
        scheduler, its steps run in batches with other sequences' steps (first and alone
        while `urgent`).
        """
        drafter = drafter or self.lookup_draft
        if self.scheduler is None:
            yield from self._decode(logprobs, max_new_tokens, stop_ids, drafter, lead)
            return
        with self.scheduler.decoding():
            yield from self._decode(logprobs, max_new_tokens, stop_ids, drafter, lead)

    def _decode(
        self,
        logprobs: Any,
        max_new_tokens: int,
        stop_ids: set[int],
        drafter: Drafter,
        lead: Sequence[int],
    ) -> Iterator[tuple[int, float]]:
        """`stream`'s loop: greedy tokens, drafts checked in one pass. The argmax of each
        pass is taken where the pass ran (`_feed_best`): torch work on several threads is
        slow on a CPU (their OpenMP pools slow each other's small operations down)."""
        produced: list[int] = []
        pending = list(lead)
        best = self._best(logprobs) if logprobs is not None and not pending else None
        while len(produced) < max_new_tokens:
            if not pending:
                token, logprob = best
                if token in stop_ids:
                    return
                yield token, logprob
                produced.append(token)
                if len(produced) >= max_new_tokens:
                    return
                pending = [token]
            self.tokens.extend(pending)  # provisionally, so the draft can follow them
            draft = drafter(produced)[: max_new_tokens - len(produced)]
            del self.tokens[-len(pending) :]
            decoding = not self.urgent
            if not draft:
                [best], pending = self._feed_best(pending, 1, decoding), []
                continue
            checked = self._feed_best([*pending, *draft], len(draft) + 1, decoding)
            accepted = 0
            for position, proposed in enumerate(draft):
                if checked[position][0] != proposed or proposed in stop_ids:
                    break
                yield proposed, checked[position][1]
                produced.append(proposed)
                accepted += 1
            self._forget(len(draft) - accepted)
            best, pending = checked[accepted], []

    def _feed_best(self, token_ids: list[int], keep: int, decoding: bool) -> list[tuple]:
        """`feed`, then the best next token and its log-probability after each of the last
        `keep` tokens."""
        if self.scheduler is None:
            return best_tokens(self.forward(token_ids, keep))
        step = LMPass(self, list(token_ids), keep, decoding)
        self.scheduler.run(step)
        return step.best

    def _best(self, logprobs: Any) -> tuple[int, float]:
        """The best token of `logprobs` (one position), worked out on the LM's thread."""
        if self.scheduler is None:
            return best_tokens(logprobs)[0]
        return self.scheduler.call(lambda: best_tokens(logprobs))[0]


def best_tokens(logprobs: Any) -> list[tuple[int, float]]:
    """(token, log-probability) of the most likely token at each position of `logprobs`
    (one position, shape (vocab,), or several, shape (n, vocab))."""
    rows = logprobs if logprobs.dim() == 2 else logprobs.unsqueeze(0)
    values, ids = rows.max(dim=-1)
    return list(zip(ids.tolist(), values.tolist(), strict=True))


def end_of_turn_id(tokenizer: Any) -> int:
    """The token that closes an assistant turn in the model's chat format."""
    vocab = tokenizer.get_vocab()
    return vocab.get("<|im_end|>", vocab.get("<end_of_turn>", tokenizer.eos_token_id))


def stop_token_ids(tokenizer: Any, *texts: str) -> set[int]:
    """The ids that end a generation: EOS, the chat end marker, and any single-token texts."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    # A new turn starting also ends this one (an adapter may have learnt either marker).
    for text in ("<|im_end|>", "<|endoftext|>", "<|im_start|>", *texts):
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1:
            ids.add(encoded[0])
    return ids


class TextStreamer:
    """Turns a stream of token ids into text pieces that never split a character."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.sent = 0

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        piece, self.sent = text[self.sent :], len(text)
        return piece

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)
