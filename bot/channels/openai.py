"""The OpenAI-compatible chat route: any OpenAI client (or Open WebUI) can talk to the bot.

    app.include_router(openai_router(chats, access))

The bot keeps the conversation itself, so only the last user message is read. A
conversation is named by `user` or the `X-Session-Id` header; without either each request
starts a new one, never derived from the messages' content (two clients opening with the
same words must not share a session and its verified order).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from bot.channels.access import Access, Caller
from bot.channels.streams import started
from bot.dialogue.reply import Reply
from bot.dialogue.service import ChatService
from bot.settings import ID_PATTERN, MAX_MESSAGE_CHARS
from bot.stores.sessions import new_session_id

log = logging.getLogger("shopbot.server")


class OpenAIMessage(BaseModel):
    role: str = Field(max_length=20)
    content: str | list[dict[str, Any]] | None = None


class CompletionIn(BaseModel):
    model: str = Field("shopbot", max_length=200)
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    user: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="The session id (the conversation); left out, each request is a new one.",
    )


MODEL_ID = "shopbot"  # the one model this surface offers: the whole assistant
STARTED = int(time.time())  # the model list's `created`: when this process started


def openai_router(chats: ChatService, access: Access) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/models")
    def models(caller: Caller = Depends(access.chat_caller)) -> dict:  # noqa: B008
        """The OpenAI model list that clients such as Open WebUI read first: one model,
        `shopbot` (any `model` sent to `/v1/chat/completions` gets the same assistant)."""
        return {"object": "list", "data": [model_card()]}

    @router.get("/v1/models/{model_id}")
    def model(model_id: str, caller: Caller = Depends(access.chat_caller)) -> dict:  # noqa: B008
        if model_id != MODEL_ID:
            raise HTTPException(404, f"no model {model_id!r}: this server offers {MODEL_ID!r}")
        return model_card()

    @router.post("/v1/chat/completions")
    def chat_completions(
        body: CompletionIn,
        caller: Caller = Depends(access.chat_caller),  # noqa: B008 (a local dependency)
        x_session_id: Annotated[str | None, Header(pattern=ID_PATTERN)] = None,
    ):
        """OpenAI-compatible chat: any OpenAI client can talk to the bot. The bot keeps the
        conversation itself, so only the last user message is read. The conversation is
        `user` (or the `X-Session-Id` header); without either each request starts a new
        one, whose id comes back in the `X-Session-Id` response header and in
        `shopbot.session_id`: send it as `user` to go on."""
        message = _last_user_text(body.messages)
        session_id = x_session_id or body.user or new_session_id("oai-")
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        headers = {"X-Session-Id": session_id}
        if not body.stream:
            reply = chats.reply(message, session_id, None, caller.owner)
            completion = _completion(completion_id, created, body.model, reply)
            return JSONResponse(completion, headers=headers)
        events = started(chats.stream(message, session_id, None, caller.owner))
        chunks = _completion_chunks(completion_id, created, body.model, events)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)

    return router


def _last_user_text(messages: list[OpenAIMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            if isinstance(message.content, list):
                parts = [p.get("text", "") for p in message.content if p.get("type") == "text"]
                return " ".join(str(part) for part in parts)[:MAX_MESSAGE_CHARS]
            return (message.content or "")[:MAX_MESSAGE_CHARS]
    raise HTTPException(status_code=422, detail="messages: no message with role 'user'")


def _completion(completion_id: str, created: int, model: str, reply: Reply) -> dict:
    timings = reply.timings_ms
    prompt, completion = int(timings.get("prompt_tokens", 0)), int(timings.get("new_tokens", 0))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "shopbot": reply.model_dump(mode="json"),
    }


def _completion_chunks(
    completion_id: str, created: int, model: str, events: Iterator[dict]
) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        document = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(document, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if event["type"] == "delta":
                yield chunk({"content": event["text"]})
            elif event["type"] == "reply":
                yield chunk({}, "stop", shopbot=event["reply"].model_dump(mode="json"))
    except Exception:
        log.exception("chat completion stream failed")
        yield 'data: {"error": {"message": "the assistant failed on this message"}}\n\n'
    yield "data: [DONE]\n\n"


def model_card() -> dict:
    return {"id": MODEL_ID, "object": "model", "created": STARTED, "owned_by": "shopbot"}
