"""The Chatwoot webhook against a fake Chatwoot HTTP server on loopback that records every
call, with a real Assistant on the tiny LM answering."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.channels.chatwoot import WEBHOOK_PATH, chatwoot_router, format_reply
from bot.dialogue.engine import Assistant
from bot.dialogue.reply import ProductCard, Reply
from bot.nlu.parser import Parse
from bot.shop import Shop
from retrieval.catalog import Product

TOKEN = "hook-s3cret"
API_TOKEN = "bot-access-token"
MESSAGES = "/api/v1/accounts/1/conversations/7/messages"
TOGGLE = "/api/v1/accounts/1/conversations/7/toggle_status"
NO_CONVERSATION = "missing or invalid field 'conversation.id': None"
PRODUCTS = [
    Product(id="S1", title="Fleetfoot Road Runner Running Shoe – Red", brand="Fleetfoot",
            category="Shoes", price=89.99, attributes={"colour": "red"}),
    Product(id="S3", title="Stridewell Glide Running Shoe – Red", brand="Stridewell",
            category="Shoes", price=119.0, attributes={"colour": "red"}),
    Product(id="K1", title="Brewhaus Steel Kettle – Silver", brand="Brewhaus",
            category="Kitchen", price=39.0, attributes={"colour": "silver"}),
]  # fmt: skip


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any


class FakeChatwoot:
    """A Chatwoot stand-in: records each POST and answers with `status` (and `error_body`)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.status = 200
        self.error_body = ""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                fake.calls.append(Call(self.path, headers, json.loads(raw)))
                ok = fake.status < 400
                body = json.dumps({"id": len(fake.calls)}) if ok else fake.error_body
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.running = False


@pytest.fixture
def chatwoot():
    fake = FakeChatwoot()
    yield fake
    fake.stop()


@pytest.fixture
def shop(settings, catalog):
    catalog.ingest_products(PRODUCTS)
    shop = Shop(settings, catalog=catalog)
    yield shop
    shop.close()


class Answers:
    """`answer` backed by the real assistant; remembers each call and reply."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.calls: list[tuple[str, str, str | None]] = []
        self.replies: list[dict[str, Any]] = []

    def __call__(self, message: str, session_id: str, shopper_id: str | None) -> Reply:
        self.calls.append((message, session_id, shopper_id))
        turn = self.assistant.respond(message, session_id=session_id, shopper_id=shopper_id)
        self.replies.append(turn.to_dict())
        return turn.to_reply()


@pytest.fixture
def answers(assistant):
    return Answers(assistant)


def webhook(settings, answer, chatwoot_url: str | None = None, **overrides) -> TestClient:
    configured = settings.model_copy(
        update={
            "chatwoot_url": chatwoot_url,
            "chatwoot_api_token": API_TOKEN,
            "chatwoot_webhook_token": TOKEN,
            **overrides,
        }
    )
    app = FastAPI()
    app.include_router(chatwoot_router(configured, answer))
    return TestClient(app)


@pytest.fixture
def client(settings, answers, chatwoot):
    return webhook(settings, answers, chatwoot.url)


def event(content: Any = "red running shoes", *, status: str = "pending", **changes) -> dict:
    """A `message_created` webhook body as Chatwoot sends it to an agent bot."""
    body = {
        "event": "message_created",
        "id": 901,
        "content": content,
        "content_type": "text",
        "content_attributes": {},
        "message_type": "incoming",
        "private": False,
        "created_at": "2025-05-01T10:00:00.000Z",
        "source_id": None,
        "sender": {"id": 42, "name": "Ann Lee", "email": "ann@example.com", "type": "contact"},
        "conversation": {
            "id": 7,
            "display_id": 7,
            "inbox_id": 3,
            "status": status,
            "channel": "Channel::WebWidget",
            "additional_attributes": {},
        },
        "account": {"id": 1, "name": "Demo Store"},
        "inbox": {"id": 3, "name": "Website"},
    }
    body.update(changes)
    return body


def post(client: TestClient, body: Any, token: str | None = TOKEN):
    headers = {} if token is None else {"X-Shopbot-Webhook-Token": token}
    return client.post(WEBHOOK_PATH, headers=headers, json=body)


def search_for_red_shoes(assistant, monkeypatch):
    parse = Parse("search_products", {"query": "running shoes", "colour": "red"}, 0.99)
    monkeypatch.setattr(assistant.parser, "parse", lambda text, previous=None: parse)


def test_a_shopper_message_gets_one_reply_with_the_products(
    client, chatwoot, answers, assistant, monkeypatch
):
    search_for_red_shoes(assistant, monkeypatch)
    response = post(client, event("red running shoes please"))
    assert response.status_code == 200
    assert response.json() == {"status": "replied"}
    assert answers.calls == [("red running shoes please", "chatwoot-1-7", "chatwoot-1-contact-42")]
    reply = answers.replies[0]
    assert [p["id"] for p in reply["products"]]  # the search found red shoes
    listed = "\n".join(f"- {p['title']}: ${p['price']:,.2f}" for p in reply["products"])
    assert len(chatwoot.calls) == 1
    call = chatwoot.calls[0]
    assert call.path == MESSAGES
    assert call.headers["api_access_token"] == API_TOKEN
    assert call.body == {
        "content": f"{reply['reply']}\n\n{listed}" if reply["reply"] else listed,
        "message_type": "outgoing",
    }
    assert "Fleetfoot Road Runner Running Shoe – Red: $89.99" in call.body["content"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (event(message_type="outgoing"), "message_type 'outgoing' is not from the contact"),
        (event(message_type="activity"), "message_type 'activity' is not from the contact"),
        (event(message_type="template"), "message_type 'template' is not from the contact"),
        (event(private=True), "private note"),
        (event(event="message_updated"), "event 'message_updated' is not handled"),
        (event(event="conversation_created"), "event 'conversation_created' is not handled"),
        ({"event": "webwidget_triggered"}, "event 'webwidget_triggered' is not handled"),
        (event(status="open"), "conversation is open: a human agent has it"),
        (event(None), "message has no text"),  # an attachment without words
        (event("   "), "message has no text"),
    ],
)
def test_other_events_are_acknowledged_and_ignored(client, chatwoot, answers, body, reason):
    response = post(client, body)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": reason}
    assert chatwoot.calls == [] and answers.calls == []


def test_numeric_message_types_from_the_api_are_read_too(client, chatwoot, answers):
    assert post(client, event("hello", message_type=0)).json() == {"status": "replied"}
    assert post(client, event("hello", message_type=1)).json()["status"] == "ignored"
    assert len(answers.calls) == 1 and len(chatwoot.calls) == 1


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN.upper()])
def test_a_wrong_or_missing_token_is_refused(client, chatwoot, answers, token):
    response = post(client, event(), token=token)
    assert response.status_code == 401
    assert response.json() == {"detail": "missing or wrong webhook token"}
    assert chatwoot.calls == [] and answers.calls == []


def test_the_webhook_is_off_until_its_token_is_set(settings, answers, chatwoot):
    client = webhook(settings, answers, chatwoot.url, chatwoot_webhook_token=None)
    response = post(client, event())
    assert response.status_code == 503
    assert response.json() == {
        "detail": "help-desk integration is off: set SHOPBOT_CHATWOOT_WEBHOOK_TOKEN"
    }
    assert chatwoot.calls == [] and answers.calls == []


def test_a_half_configured_integration_says_what_is_missing(settings, answers):
    client = webhook(settings, answers, None, chatwoot_api_token="")
    response = post(client, event())
    assert response.status_code == 503
    assert response.json() == {
        "detail": "help-desk integration is half configured: "
        "set SHOPBOT_CHATWOOT_URL and SHOPBOT_CHATWOOT_API_TOKEN"
    }
    assert answers.calls == []


def test_a_body_that_is_not_json_is_a_400(client, chatwoot, answers):
    response = client.post(
        WEBHOOK_PATH,
        content=b'{"event": "message_created",',
        headers={"Content-Type": "application/json", "X-Shopbot-Webhook-Token": TOKEN},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("body is not JSON")
    assert chatwoot.calls == [] and answers.calls == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([event()], "body must be a JSON object, but got list"),
        ({"content": "hi"}, "missing field 'event'"),
        (event(conversation=None), NO_CONVERSATION),
        (event(conversation={"status": "open"}), NO_CONVERSATION),
        (event(account={"id": "abc"}), "missing or invalid field 'account.id': 'abc'"),
        (event(account=None), "missing or invalid field 'account.id': None"),
        (event(content={"text": "hi"}), "content must be text, but got dict"),
    ],
)  # fmt: skip
def test_a_message_without_what_the_bot_needs_is_a_422(client, chatwoot, answers, body, detail):
    response = post(client, body)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}
    assert chatwoot.calls == [] and answers.calls == []


def test_a_missing_sender_still_gets_a_reply_without_a_shopper_id(client, chatwoot, answers):
    assert post(client, event("hello", sender=None)).json() == {"status": "replied"}
    assert answers.calls == [("hello", "chatwoot-1-7", None)]


def test_chatwoot_down_is_a_502(client, chatwoot, answers):
    chatwoot.stop()
    response = post(client, event("hello"))
    assert response.status_code == 502
    assert response.json()["detail"].startswith(f"cannot reach Chatwoot at {chatwoot.url}: ")
    assert len(answers.calls) == 1


def test_chatwoot_refusing_the_reply_is_a_502_with_its_status(client, chatwoot):
    chatwoot.status = 401
    chatwoot.error_body = '{"error": "You are not authorized to do this action"}'
    response = post(client, event("hello"))
    assert response.status_code == 502
    assert response.json() == {
        "detail": f"Chatwoot answered 401 to POST {MESSAGES}: "
        '{"error": "You are not authorized to do this action"}'
    }


def test_a_handoff_posts_the_reply_then_opens_the_conversation(
    client, chatwoot, answers, assistant, monkeypatch
):
    handoff = Parse("contact_human_agent", {}, 0.99)
    monkeypatch.setattr(assistant.parser, "parse", lambda text, previous=None: handoff)
    response = post(client, event("can I talk to a real person?"))
    assert response.status_code == 200
    assert response.json() == {"status": "handed_off", "reason": "the shopper needs a person"}
    assert [call.path for call in chatwoot.calls] == [MESSAGES, TOGGLE]
    assert chatwoot.calls[0].body == {
        "content": assistant.texts["handoff"],
        "message_type": "outgoing",
    }
    assert chatwoot.calls[1].body == {"status": "open"}
    assert chatwoot.calls[1].headers["api_access_token"] == API_TOKEN
    # Chatwoot now reports the conversation as open: the bot stays out of it.
    follow_up = post(client, event("hello?", status="open"))
    assert follow_up.json()["status"] == "ignored"
    assert len(chatwoot.calls) == 2 and len(answers.calls) == 1


def test_an_assistant_failure_hands_the_conversation_to_a_person(settings, chatwoot, caplog):
    def broken(message, session_id, shopper_id):
        raise RuntimeError("LM out of memory")

    client = webhook(settings, broken, chatwoot.url)
    with caplog.at_level(logging.ERROR, logger="shopbot.helpdesk"):
        response = post(client, event("hello"))
    assert response.status_code == 200
    assert response.json() == {"status": "handed_off", "reason": "the assistant failed"}
    assert [(call.path, call.body) for call in chatwoot.calls] == [(TOGGLE, {"status": "open"})]
    assert "the assistant failed" in caplog.text


def test_logs_hold_no_email_phone_or_card_numbers(client, chatwoot, caplog):
    message = "I'm ann.lee@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111"
    chatwoot.status = 422
    chatwoot.error_body = json.dumps({"error": f"cannot post: {message}"})
    with caplog.at_level(logging.DEBUG):
        response = post(client, event(message))
    assert response.status_code == 502
    assert "[email]" in caplog.text and "[phone]" in caplog.text and "[card]" in caplog.text
    for secret in ("ann.lee@example.com", "7946 0958", "4111"):
        assert secret not in caplog.text
        assert secret not in response.json()["detail"]


def test_format_reply_lists_products_with_prices_and_escapes_markdown():
    def reply(text: str, *products: ProductCard) -> Reply:
        fields = {"intent": "search_products", "slots": {}, "confidence": 1.0, "route": "search"}
        return Reply(session_id="s", reply=text, handoff=False, products=list(products), **fields)

    mug = ProductCard(id="A", title="Mug *Limited* [v2]", price=1234.5, image_url="a", score=1)
    card = ProductCard(id="B", title="Gift card", price=None, image_url="b", score=0.5)
    assert format_reply(reply("Here are two.", mug, card)) == (
        "Here are two.\n\n- Mug \\*Limited\\* \\[v2\\]: $1,234.50\n- Gift card"
    )
    assert format_reply(reply("Hi!")) == "Hi!"
