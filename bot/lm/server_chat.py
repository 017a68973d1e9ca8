"""Replies from an OpenAI-compatible server (llama.cpp, vLLM, TGI) as a LangChain chat model.

`ServerChatModel` streams `/chat/completions` over httpx, so the reply writer talks to it as
it talks to the local LM (`bot.lm.chat_model.LocalChatModel`), with no client library
beyond httpx. Greedy decoding (temperature 0), as in process. A final assistant message is
continued by llama.cpp's server (its assistant prefill) and by vLLM with
`continue_final_message`. Where the server reports its own figures (llama.cpp's `timings`),
the last chunk carries them as the local model's do (`timings_of`).

A server that cannot be reached or refuses raises `LMServerError`, whose message names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from bot.lm.server import DEFAULT_TIMEOUT_S, LMServerError, http_client, refused, unreachable
from bot.prompts import CHAT_ROLES


class ServerChatModel(BaseChatModel):
    """The chat model served at `url` (e.g. http://localhost:8080/v1) as `model`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    url: str
    model: str = "default"
    api_key: str | None = Field(default=None, repr=False)
    max_tokens: int = 96
    timeout_s: float = DEFAULT_TIMEOUT_S
    client: Any = None  # an httpx.Client; made on first use when not given
    continues_final_message: bool = True  # llama.cpp prefills it; vLLM when told to

    @property
    def _llm_type(self) -> str:
        return "shopbot-server"

    def _client(self) -> Any:
        if self.client is None:
            self.client = http_client(self.api_key, self.timeout_s)
        return self.client

    def _body(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        chat = [
            {"role": CHAT_ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages
        ]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat,
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "stream": True,
        }
        if chat[-1]["role"] == "assistant":  # vLLM's switches; llama.cpp continues it itself
            body.update(continue_final_message=True, add_generation_prompt=False)
        if stop:
            body["stop"] = stop
        return body

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import httpx

        url = self.url.rstrip("/")
        timings: dict[str, float] = {}
        sent = False
        for attempt in range(2):
            try:
                with self._client().stream(
                    "POST", f"{url}/chat/completions", json=self._body(messages, stop)
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        raise refused(url, response.status_code, response.text)
                    for chunk in server_events(response.iter_lines()):
                        timings = server_timings(chunk) or timings
                        for choice in chunk.get("choices") or []:
                            piece = (choice.get("delta") or {}).get("content") or ""
                            if piece:
                                sent = True
                                if run_manager:
                                    run_manager.on_llm_new_token(piece)
                                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
                break
            except httpx.RemoteProtocolError:
                if sent or attempt:  # a kept-alive connection the server had closed: once more
                    raise LMServerError(f"the language model server at {url} hung up") from None
            except httpx.HTTPError as exc:
                raise unreachable(url, exc) from None
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


def server_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON documents of a server-sent event stream, up to `data: [DONE]`."""
    for line in lines:
        data = line.removeprefix("data:").strip()
        if line.startswith("data:") and data != "[DONE]":
            yield json.loads(data)


def server_timings(chunk: dict[str, Any]) -> dict[str, float]:
    """llama.cpp's figures in a stream chunk, named as the local model names its own
    (`bot.lm.chat_model.timings_of`); {} when the chunk has none (other servers).

    >>> server_timings({"timings": {"prompt_n": 40, "prompt_ms": 50.0, "predicted_n": 30,
    ...     "predicted_ms": 500.0, "predicted_per_second": 60.0}})["decode_tokens_per_s"]
    60.0
    """
    found = chunk.get("timings")
    if not found:
        return {}
    spent_s = (found["prompt_ms"] + found["predicted_ms"]) / 1000
    return {
        "prompt_tokens": found["prompt_n"],
        "new_tokens": found["predicted_n"],
        "prefill_ms": round(found["prompt_ms"], 1),
        "decode_tokens_per_s": round(found["predicted_per_second"], 1),
        "tokens_per_s": round(found["predicted_n"] / spent_s, 1) if spent_s else 0.0,
    }
