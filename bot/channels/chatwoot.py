"""The Chatwoot help-desk integration: shopbot as a Chatwoot agent bot.

    from bot.channels.chatwoot import chatwoot_router
    app.include_router(chatwoot_router(settings, answer))

Chatwoot POSTs each event of the agent bot's inboxes to `/v1/helpdesk/chatwoot`. The
request proves it knows `chatwoot_webhook_token` either by carrying it in the
`X-Shopbot-Webhook-Token` header, or by signing the body with it: `X-Chatwoot-Signature`
is `sha256=` + the hex HMAC-SHA256 of the raw body (or of `"{timestamp}.{body}"` with
`X-Chatwoot-Timestamp`, which must then be within 5 minutes). A token in the URL is refused:
URLs end up in access logs and proxies' logs.
For a shopper's message (`message_created`, `message_type` "incoming", not private) in a
conversation the bot still holds, the router runs one chat turn through `answer` and posts
the reply, with the products as a short markdown list, back through Chatwoot's API. When the
turn hands over (`Reply.handoff`), or the assistant fails, the conversation's status is
set to "open" so it lands in the human agents' queue; from then on the bot stays silent in
that conversation. Everything else is acknowledged and ignored.

The work is done inline: the webhook answers once the reply has been posted, with
`{"status": "replied" | "ignored" | "handed_off", "reason": ...}`, or 502 when Chatwoot
refused or could not be reached. Logs carry redacted message text only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Header, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from bot.dialogue.grounding import money
from bot.dialogue.reply import Reply
from bot.errors import ShopbotError
from bot.redact import redact
from bot.settings import Settings

log = logging.getLogger("shopbot.helpdesk")

WEBHOOK_PATH = "/v1/helpdesk/chatwoot"
TIMEOUT_S = 10.0
# Chatwoot's webhooks spell message types as words; its API as numbers (0 = incoming).
INCOMING = ("incoming", 0)
HUMAN_STATUS = "open"  # agent-bot conversations wait in "pending" while the bot has them
MARKDOWN_SPECIALS = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>"})
SIGNATURE_MAX_AGE_S = 300

Answer = Callable[[str, str, str | None], Reply]


class InvalidWebhook(ShopbotError):
    """The webhook body is not a Chatwoot event this router can read."""


class ChatwootUnavailable(ShopbotError):
    """Chatwoot refused a call or could not be reached."""


@dataclass(frozen=True)
class ShopperMessage:
    """A shopper's message from a Chatwoot conversation, as the bot needs it."""

    account_id: int
    conversation_id: int
    content: str
    contact_id: int | None = None

    @property
    def session_id(self) -> str:
        return f"chatwoot-{self.account_id}-{self.conversation_id}"

    @property
    def shopper_id(self) -> str | None:
        if self.contact_id is None:
            return None
        return f"chatwoot-{self.account_id}-contact-{self.contact_id}"


def read_event(payload: Any) -> ShopperMessage | str:
    """The shopper's message in a Chatwoot webhook body, or the reason the bot ignores it.

    Raises InvalidWebhook, naming the field, when a message the bot should answer lacks the
    ids it needs to answer; other events are not checked beyond their `event` name.
    """
    if not isinstance(payload, dict):
        raise InvalidWebhook(f"body must be a JSON object, but got {type(payload).__name__}")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidWebhook("missing field 'event'")
    if event != "message_created":
        return f"event {event!r} is not handled"
    message_type = payload.get("message_type")
    if message_type not in INCOMING:
        return f"message_type {message_type!r} is not from the contact"
    if payload.get("private") is True:
        return "private note"
    account_id = _id(payload, "account")
    conversation = payload.get("conversation")
    conversation_id = _id(payload, "conversation")
    status = conversation.get("status")
    if status == HUMAN_STATUS:
        return "conversation is open: a human agent has it"
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        raise InvalidWebhook(f"content must be text, but got {type(content).__name__}")
    if not (content or "").strip():
        return "message has no text"
    sender = payload.get("sender")
    contact_id = sender.get("id") if isinstance(sender, dict) else None
    if not isinstance(contact_id, int) or isinstance(contact_id, bool):
        contact_id = None
    return ShopperMessage(account_id, conversation_id, content, contact_id)


def _id(payload: dict[str, Any], name: str) -> int:
    part = payload.get(name)
    value = part.get("id") if isinstance(part, dict) else None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidWebhook(f"missing or invalid field '{name}.id': {value!r}")
    return value


def format_reply(reply: Reply) -> str:
    """The reply text, then the products it shows as a markdown list of title and price:
    "Two picks:\\n\\n- Kettle: $39.00"."""
    text = reply.reply.strip()
    lines = []
    for product in reply.products:
        title = (product.title or product.id).translate(MARKDOWN_SPECIALS)
        price = money(product.price, product.currency) if product.price is not None else None
        lines.append(f"- {title}: {price}" if price else f"- {title}")
    return "\n\n".join(part for part in (text, "\n".join(lines)) if part)


class ChatwootClient:
    """Calls to Chatwoot's application API as the agent bot (header `api_access_token`)."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        timeout: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_token = api_token
        self.timeout = timeout
        self.transport = transport

    def post_message(self, account_id: int, conversation_id: int, content: str) -> None:
        path = f"/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"
        self._post(path, {"content": content, "message_type": "outgoing"})

    def open_conversation(self, account_id: int, conversation_id: int) -> None:
        """Hand the conversation to the human agents: status "open" leaves the bot's queue."""
        path = f"/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status"
        self._post(path, {"status": HUMAN_STATUS})

    def _post(self, path: str, body: dict[str, Any]) -> None:
        headers = {"api_access_token": self.api_token}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.post(self.base_url + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChatwootUnavailable(
                f"cannot reach Chatwoot at {self.base_url}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.is_error:
            raise ChatwootUnavailable(
                f"Chatwoot answered {response.status_code} to POST {path}: "
                f"{redact(response.text[:300])}"
            )


def chatwoot_router(
    settings: Settings, answer: Answer, *, transport: httpx.BaseTransport | None = None
) -> APIRouter:
    """`POST /v1/helpdesk/chatwoot`: Chatwoot's agent-bot webhook (see the module docstring
    for how a request proves it comes from Chatwoot).

    `answer(message, session_id, shopper_id)` runs one chat turn and returns its dict (with
    "reply", "handoff" and "products"). Statuses: 503 while the integration is off or half
    configured, 401 for a wrong, missing or in-URL token or a bad signature, 400/422 for a
    body that is not a Chatwoot event, 502 when Chatwoot refuses the reply or cannot be
    reached, else 200.
    """
    router = APIRouter(tags=["help desk"])

    @router.post(WEBHOOK_PATH)
    async def chatwoot_webhook(
        request: Request,
        token: Annotated[str | None, Query(include_in_schema=False)] = None,
        x_shopbot_webhook_token: Annotated[str | None, Header()] = None,
        x_chatwoot_signature: Annotated[str | None, Header()] = None,
        x_chatwoot_timestamp: Annotated[str | None, Header()] = None,
    ) -> dict[str, str]:
        body = await request.body()
        if token is not None:
            raise HTTPException(
                status_code=401,
                detail="the webhook token goes in the X-Shopbot-Webhook-Token header (or sign "
                "the body: X-Chatwoot-Signature), never in the URL",
            )
        proof = Proof(x_shopbot_webhook_token, x_chatwoot_signature, x_chatwoot_timestamp)
        client = _authorised_client(settings, proof, body, transport)
        try:
            payload = json.loads(body)
        except (JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(status_code=400, detail=f"body is not JSON: {exc}") from None
        try:
            message = read_event(payload)
        except InvalidWebhook as exc:
            log.info("chatwoot webhook rejected: %s", redact(str(exc)))
            raise HTTPException(status_code=422, detail=str(exc)) from None
        if isinstance(message, str):
            log.debug("chatwoot event ignored: %s", message)
            return {"status": "ignored", "reason": message}
        # The turn (LM) and the calls to Chatwoot block: keep them off the event loop.
        return await run_in_threadpool(_serve, message, answer, client)

    return router


@dataclass(frozen=True)
class Proof:
    """What a webhook request offers to show it comes from Chatwoot."""

    token: str | None = None
    signature: str | None = None
    timestamp: str | None = None

    def holds(self, secret: str, body: bytes, now: float | None = None) -> bool:
        """Whether the header token is `secret`, or the signature is the body's HMAC with
        it (timestamped signatures must be fresh)."""
        if self.token is not None:
            return hmac.compare_digest(self.token.encode(), secret.encode())
        if not self.signature:
            return False
        signed = body
        if self.timestamp is not None:
            try:
                age = abs((time.time() if now is None else now) - float(self.timestamp))
            except ValueError:
                return False
            if age > SIGNATURE_MAX_AGE_S:
                return False
            signed = self.timestamp.encode() + b"." + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        given = self.signature.strip().removeprefix("sha256=").lower()
        return hmac.compare_digest(given.encode(), expected.encode())


def _authorised_client(
    settings: Settings, proof: Proof, body: bytes, transport: httpx.BaseTransport | None
) -> ChatwootClient:
    expected = settings.chatwoot_webhook_token
    if not expected:
        raise HTTPException(
            status_code=503,
            detail="help-desk integration is off: set SHOPBOT_CHATWOOT_WEBHOOK_TOKEN",
        )
    if not proof.holds(expected, body):
        raise HTTPException(status_code=401, detail="missing or wrong webhook token")
    missing = [
        f"SHOPBOT_{name.upper()}"
        for name in ("chatwoot_url", "chatwoot_api_token")
        if not getattr(settings, name)
    ]
    if missing:
        raise HTTPException(
            status_code=503,
            detail=f"help-desk integration is half configured: set {' and '.join(missing)}",
        )
    return ChatwootClient(settings.chatwoot_url, settings.chatwoot_api_token, transport=transport)


def _serve(message: ShopperMessage, answer: Answer, client: ChatwootClient) -> dict[str, str]:
    """Answer one shopper message in Chatwoot; hand the conversation over when the turn asks
    for a person or the assistant fails, so the shopper is never left without a reply."""
    where = f"chatwoot conversation {message.account_id}/{message.conversation_id}"
    log.debug("%s: shopper wrote %r", where, redact(message.content))
    try:
        reply = answer(message.content, message.session_id, message.shopper_id)
        content = format_reply(reply)
        handoff = reply.handoff
    except Exception:
        log.exception("%s: the assistant failed; handing over to a person", where)
        reply, content, handoff = None, "", True
    try:
        if content:
            client.post_message(message.account_id, message.conversation_id, content)
        if handoff:
            client.open_conversation(message.account_id, message.conversation_id)
    except ChatwootUnavailable as exc:
        log.error("%s: %s", where, exc)
        raise HTTPException(status_code=502, detail=str(exc)) from None
    if reply is None:
        log.info("%s: handed over after an assistant error", where)
        return {"status": "handed_off", "reason": "the assistant failed"}
    if handoff:
        log.info("%s: handed over (intent %s)", where, reply.intent)
        return {"status": "handed_off", "reason": "the shopper needs a person"}
    log.info(
        "%s: replied (intent %s, %d products)",
        where,
        reply.intent,
        len(reply.products),
    )
    return {"status": "replied"}
