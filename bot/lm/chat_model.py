"""The local LM as a LangChain chat model, and the switch to a remote one by configuration.

`LocalChatModel` wraps a loaded causal LM (greedy decoding, token streaming), so the reply
writer talks to any LangChain `BaseChatModel` the same way. A final assistant message is
continued rather than answered (the reply writer opens some replies itself), and the KV
cache of the opening that successive prompts share (the system prompt) is computed once.
With a `scheduler` (`bot.lm.scheduler.PassScheduler`), replies written at once on several
threads run their decoding steps together, as one batched pass.
With `lm_url` set, replies come from an OpenAI-compatible server instead (vLLM, TGI,
llama.cpp's server), through `bot.lm.server_chat.ServerChatModel`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from bot.lm.decoding import Decoder, PromptPrefix, TextStreamer, stop_token_ids
from bot.prompts import CHAT_ROLES

MIN_SHARED_PREFIX = 32  # tokens two prompts must share before their opening is cached
_SENTENCE_END = re.compile(r"[.!?]")


class LocalChatModel(BaseChatModel):
    """A causal LM loaded by `bot.lm.load_lm`, speaking LangChain's chat-model interface."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    lm: Any
    max_new_tokens: int = 96
    max_prompt_tokens: int = 1536
    draft_tokens: int = 6  # prompt-lookup draft length; 0 = plain greedy decoding
    continues_final_message: bool = True  # a trailing assistant message is continued
    reuse_prefix: bool = True  # copy in the cached KV of the opening prompts share
    scheduler: Any = None  # runs the passes of replies written at once together
    _prefix_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _prefix: PromptPrefix | None = PrivateAttr(default=None)
    _last_prompt: list[int] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "shopbot-local"

    def _prompt_ids(self, messages: list[BaseMessage]) -> list[int]:
        chat = [
            {"role": CHAT_ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages
        ]
        tokenizer = self.lm.tokenizer
        continues = chat[-1]["role"] == "assistant"
        text = tokenizer.apply_chat_template(
            chat,
            add_generation_prompt=not continues,
            continue_final_message=continues,
            tokenize=False,
        )
        ids = tokenizer.encode(text, add_special_tokens=False)
        return ids[-self.max_prompt_tokens :]

    def _shared_prefix(self, prompt: list[int]) -> PromptPrefix | None:
        """The cached opening this prompt starts with: the longest one it shares with the
        prompt before it, once that is long enough (the system prompt, in practice). The
        cache of a causal LM's first n tokens depends on those tokens alone."""
        if not self.reuse_prefix:
            return None
        with self._prefix_lock:  # replies are written on several threads at once
            return self._remember_prefix(prompt)

    def _remember_prefix(self, prompt: list[int]) -> PromptPrefix | None:
        if self._prefix is not None and self._prefix.fits(prompt):
            return self._prefix
        shared = len(os.path.commonprefix([self._last_prompt, prompt]))  # any sequences
        shared = min(shared, len(prompt) - 1)
        self._last_prompt = prompt
        if shared < MIN_SHARED_PREFIX:
            return None
        self._prefix = PromptPrefix(prompt[:shared])
        return self._prefix

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        started = time.perf_counter()
        decoder = Decoder(self.lm, self.draft_tokens, self.scheduler)
        prompt = self._prompt_ids(messages)
        prefix = self._shared_prefix(prompt)
        if self.scheduler is None:
            logprobs = decoder.prefill(prompt, prefix)
        else:  # the cache copies too, on the LM's thread (see `PassScheduler.call`)
            logprobs = self.scheduler.call(lambda: decoder.prefill(prompt, prefix))
        decoding = time.perf_counter()
        streamer = TextStreamer(self.lm.tokenizer)
        stops = stop_token_ids(self.lm.tokenizer)
        count = 0
        with contextlib.ExitStack() as first:
            if self.scheduler is not None and not isinstance(messages[-1], AIMessage):
                # A reply that has sent nothing yet writes its first sentence ahead of the
                # replies already streaming, so every shopper sees text soon.
                first.enter_context(self.scheduler.first())
                decoder.urgent = True
            for token, _ in decoder.stream(logprobs, self.max_new_tokens, stops):
                count += 1
                piece = streamer.add(token)
                if decoder.urgent and _SENTENCE_END.search(piece):
                    decoder.urgent = False
                    first.close()
                if piece:
                    if run_manager:
                        run_manager.on_llm_new_token(piece)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        done = time.perf_counter()
        timings = {
            "prompt_tokens": len(prompt),
            "new_tokens": count,
            "prefill_ms": round((decoding - started) * 1000, 1),
            "decode_tokens_per_s": round(count / (done - decoding), 1) if done > decoding else 0.0,
            "tokens_per_s": round(count / (done - started), 1) if done > started else 0.0,
        }
        # The stream's own figures travel with it, so concurrent replies never mix them up.
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={"timings": timings})
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager))


def timings_of(chunk: Any) -> dict[str, float]:
    """The figures a local reply stream reports in its last chunk (or a whole reply's
    message): prompt and new tokens, prefill ms, tokens per second. {} for other models."""
    message = getattr(chunk, "message", chunk)
    metadata = getattr(message, "response_metadata", None) or {}
    return dict(metadata.get("timings") or {})


def remote_chat_model(url: str, model: str, api_key: str | None, max_tokens: int) -> Any:
    """A chat model served by an OpenAI-compatible endpoint."""
    from bot.lm.server_chat import ServerChatModel

    return ServerChatModel(url=url, model=model, api_key=api_key, max_tokens=max_tokens)
