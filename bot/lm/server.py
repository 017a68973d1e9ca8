"""Constrained completions from an OpenAI-compatible inference server (llama.cpp, vLLM).

The intent parser sends its prompt as token ids to the server's `/completions` route with
a grammar, and reads back each generated token with its log-probability under the model
(before the grammar masked anything), so the parse's confidence is worked out as it is in
process. Each server takes the grammar its own way, and ignores fields it does not know:

- llama.cpp's `llama-server`: `grammar` (GBNF) and `n_probs`; `logprobs.content` lists
  token ids with log-probabilities of the unmasked distribution;
- vLLM: `structured_outputs.grammar` (its xgrammar backend reads GBNF) and OpenAI
  `logprobs`, with `return_tokens_as_token_ids` so tokens come back as `token_id:N`.

Errors (no server there, a refusal, an answer of the wrong shape) raise `LMServerError`,
whose message names the server and what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.errors import ShopbotError
from bot.redact import redact
from bot.settings import Settings

DEFAULT_TIMEOUT_S = 30.0


class LMServerError(ShopbotError):
    """The language model server could not be reached or gave no usable answer."""


def http_client(api_key: str | None, timeout_s: float) -> Any:
    """The httpx client both the parse and the replies talk to a server with."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(timeout=timeout_s, headers=headers)


def unreachable(url: str, exc: Exception) -> LMServerError:
    return LMServerError(f"the language model server at {url} is unreachable: {exc}")


def refused(url: str, status: int, text: str) -> LMServerError:
    """A server's refusal, its own words redacted: an error may quote the prompt, which
    holds the shopper's message."""
    return LMServerError(
        f"the language model server at {url} answered {status}: {redact(text[:200])}"
    )


@dataclass
class Completion:
    """What the server wrote: its text and each token with its log-probability."""

    text: str
    tokens: list[tuple[int, float]] = field(default_factory=list)


class CompletionServer:
    """An OpenAI-compatible server at `url` (e.g. http://localhost:8080/v1).

    The constructor only stores the configuration; the HTTP client is made on first use
    (or passed in, so tests can swap transports).
    """

    def __init__(
        self,
        url: str,
        model: str = "default",
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client: Any = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise LMServerError(f"lm_url must start with http:// or https://, but got {url!r}")
        self.url = url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._client = client

    def load(self) -> Any:
        if self._client is None:
            self._client = http_client(self.api_key, self.timeout_s)
        return self._client

    def complete(
        self, prompt_ids: list[int], grammar: str, max_tokens: int, stop: list[str]
    ) -> Completion:
        """Greedy completion of `prompt_ids` under the GBNF `grammar`."""
        import httpx

        body = {
            "model": self.model,
            "prompt": prompt_ids,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stop": stop,
            "logprobs": 1,
            "n_probs": 1,
            "grammar": grammar,
            "structured_outputs": {"grammar": grammar},
            "return_tokens_as_token_ids": True,
            "cache_prompt": True,
        }
        where = f"{self.url}/completions"
        try:
            try:
                response = self.load().post(where, json=body)
            except httpx.RemoteProtocolError:  # a kept-alive connection it had closed
                response = self.load().post(where, json=body)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None
        if response.status_code != 200:
            raise refused(self.url, response.status_code, response.text)
        try:
            return read_completion(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LMServerError(
                f"the language model server at {self.url} sent an answer without "
                f"token log-probabilities ({exc!r})"
            ) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def parse_server(settings: Settings) -> CompletionServer | None:
    """The server the intent parse runs on (`lm_url`, when `lm_parse_on_server`), else None."""
    if not (settings.lm_url and settings.lm_parse_on_server):
        return None
    return CompletionServer(settings.lm_url, settings.lm_api_model, settings.lm_api_key)


def read_completion(document: dict[str, Any]) -> Completion:
    """A `/completions` answer as a Completion; raises KeyError/ValueError on another shape.

    >>> read_completion({"choices": [{"text": "hi", "logprobs": {"content": [
    ...     {"id": 6004, "token": "hi", "logprob": -0.1}]}}]}).tokens
    [(6004, -0.1)]
    >>> read_completion({"choices": [{"text": "hi", "logprobs": {
    ...     "tokens": ["token_id:6004"], "token_logprobs": [-0.1]}}]}).tokens
    [(6004, -0.1)]
    """
    choice = document["choices"][0]
    logprobs = choice["logprobs"]
    if "content" in logprobs:  # llama.cpp
        tokens = [(int(t["id"]), float(t["logprob"])) for t in logprobs["content"]]
    else:  # OpenAI's shape (vLLM), tokens as "token_id:N"
        ids = [int(str(token).rpartition(":")[2]) for token in logprobs["tokens"]]
        tokens = list(zip(ids, map(float, logprobs["token_logprobs"]), strict=True))
    return Completion(choice["text"], tokens)
