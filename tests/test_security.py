"""The attacks of the security review, each replayed through the HTTP routes of a keyed
server (chat keys k1 and k2, admin key a1, 30 requests a minute, a Chatwoot webhook token)
and shown to fail. The app is the real one (Chroma, SQLite, the Gradio page, the dialogue
engine) with the tiny LM; the parser is replaced by a rule-based one so that order turns
(an order number, then its e-mail) go where a shopper's would.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time

import httpx
import pytest
from browser import serve_app
from click.testing import CliRunner
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.channels.access import RateLimiter
from bot.cli import main
from bot.dialogue.service import ChatService
from bot.nlu.parser import Parse
from bot.redact import EMAIL
from bot.shop import Shop
from retrieval.index import CatalogIndex
from retrieval.policies import load_policy_docs
from tests.test_chat import PRODUCTS
from tests.test_orders import make_order

K1 = {"Authorization": "Bearer k1"}
K2 = {"Authorization": "Bearer k2"}
A1 = {"Authorization": "Bearer a1"}
ANN = "ann@example.com"
ADDRESS = "1 Oak Street"  # on every demo order of make_order
ORDER_SHOWN = "being prepared"  # how the page tells a shopper where order 12345678 is
WEBHOOK_TOKEN = "hook-s3cret"


def rule_parse(text: str, previous=None) -> Parse:
    """Order talk as the fine-tuned parser reads it; anything else is a product search."""
    slots = {}
    if number := re.search(r"\b\d{8}\b", text):
        slots["order_id"] = number.group()
    if email := EMAIL.search(text):
        slots["email"] = email.group()
    if "order" in text.lower():
        return Parse("track_order", slots, 0.95)
    if email:
        return Parse("contact_customer_service", slots, 0.4)
    return Parse("search_products", {"query": text}, 0.9)


def make_app(settings, embedder, tiny_lm, monkeypatch, **changes):
    settings = settings.model_copy(update=changes)
    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    shop.orders.add([make_order("12345678", "processing")])
    chats = ChatService(settings, shop, lm=tiny_lm)
    monkeypatch.setattr(chats.open().parser, "parse", rule_parse)
    return create_app(settings, shop=shop, chats=chats, preload_lm=False), shop


@pytest.fixture
def keyed(settings, embedder, tiny_lm, monkeypatch):
    app, shop = make_app(
        settings,
        embedder,
        tiny_lm,
        monkeypatch,
        chat_keys=["k1", "k2"],
        admin_keys=["a1"],
        rate_limit_per_minute=30,
        chatwoot_webhook_token=WEBHOOK_TOKEN,
        exploration=0.0,  # rankings without a random draw: the products shown are known
    )
    with TestClient(app) as client:
        client.shop = shop
        yield client


def verify_order(client, session_id: str, headers=K1) -> dict:
    """The shopper of `session_id` proves order 12345678 is theirs; the verified reply."""
    asked = client.post(
        "/v1/chat",
        json={"session_id": session_id, "message": "where is my order 12345678?"},
        headers=headers,
    )
    assert asked.status_code == 200 and asked.json()["route"] == "order_ask"
    shown = client.post(
        "/v1/chat", json={"session_id": session_id, "message": ANN}, headers=headers
    ).json()
    assert shown["route"] == "order" and ADDRESS in json.dumps(shown["order"])
    return shown


def page_call(client, name: str, data: list):
    """Call one of the page's Gradio functions the way its browser code does; the HTTP
    response when it is refused, else the function's outputs."""
    started = client.post(f"/gradio_api/call/{name}", json={"data": data})
    if started.status_code != 200:
        return started
    events = client.get(f"/gradio_api/call/{name}/{started.json()['event_id']}").text
    blocks = [block for block in events.split("\n\n") if block.startswith("event: complete")]
    assert blocks, events
    return json.loads(blocks[-1].split("data: ", 1)[1])


def new_visitor(client) -> str:
    """Open the page as a new browser; its visitor credential (now in the client's jar)."""
    client.cookies.clear()
    page = client.get("/")
    assert page.status_code == 200
    return client.cookies["shopbot_visitor"]


# 1. Two OpenAI clients with the same opening message shared one session and its order.


def test_openai_clients_without_user_never_share_a_session(keyed):
    opening = [{"role": "user", "content": "where is my order 12345678?"}]
    first = keyed.post("/v1/chat/completions", json={"messages": opening}, headers=K1)
    session = first.headers["X-Session-Id"]
    assert first.json()["shopbot"]["session_id"] == session
    assert len(session) >= 4 + 24  # "oai-" and 144 random bits
    given = keyed.post(
        "/v1/chat/completions",
        json={"messages": [*opening, {"role": "user", "content": ANN}], "user": session},
        headers=K1,
    )
    assert given.json()["shopbot"]["route"] == "order"

    second = keyed.post(
        "/v1/chat/completions",
        json={"messages": [*opening, {"role": "user", "content": "where is my order?"}]},
        headers=K1,
    )
    assert second.headers["X-Session-Id"] != session
    assert second.json()["shopbot"]["order"] is None
    assert ADDRESS not in second.text


# 2. A known or guessed session id let anyone continue it and see its verified order.


def test_a_guessed_session_id_is_a_404_for_every_other_key_on_every_route(keyed):
    verify_order(keyed, "s1")
    tries = [
        keyed.post("/v1/chat", json={"session_id": "s1", "message": "my order?"}, headers=K2),
        keyed.post(
            "/v1/chat/stream", json={"session_id": "s1", "message": "my order?"}, headers=K2
        ),
        keyed.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "my order?"}], "user": "s1"},
            headers=K2,
        ),
        keyed.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "my order?"}]},
            headers={**K2, "X-Session-Id": "s1"},
        ),
        keyed.get("/v1/sessions/s1", headers=K2),
        keyed.get("/v1/sessions/s1", params={"shopper_id": "ann"}, headers=K2),
        keyed.get("/v1/products/search", params={"q": "shoes", "session_id": "s1"}, headers=K2),
        keyed.post(
            "/v1/feedback",
            json={"type": "like", "product_id": "S1", "session_id": "s1"},
            headers=K2,
        ),
    ]
    assert [response.status_code for response in tries] == [404] * len(tries)
    assert all(ADDRESS not in response.text for response in tries)
    assert tries[0].json() == {"detail": "no session 's1'"}
    mine = keyed.get("/v1/sessions/s1", headers=K1)
    assert mine.status_code == 200 and len(mine.json()["turns"]) == 2


def test_a_claimed_shopper_id_does_not_open_a_shoppers_session(keyed):
    mine = {"session_id": "ann-1", "message": "red shoes", "shopper_id": "ann"}
    assert keyed.post("/v1/chat", json=mine, headers=K1).status_code == 200
    claimed = keyed.get("/v1/sessions/ann-1", params={"shopper_id": "ann"}, headers=K2)
    assert claimed.status_code == 404
    assert keyed.get("/v1/sessions/ann-1", headers=K1).status_code == 404  # names no shopper
    assert (
        keyed.get("/v1/sessions/ann-1", params={"shopper_id": "ann"}, headers=K1).status_code == 200
    )


def test_a_chat_without_a_session_id_gets_an_unguessable_one(keyed):
    ids = {
        keyed.post("/v1/chat", json={"message": "red shoes"}, headers=K1).json()["session_id"]
        for _ in range(3)
    }
    assert len(ids) == 3 and all(len(i) >= 2 + 24 for i in ids)  # "s-" and 144 random bits


# 3. The page's Gradio routes answered with no key, no credential and no rate limit.


def test_the_page_routes_need_a_visitor_credential(keyed):
    keyed.cookies.clear()
    refused = keyed.post("/gradio_api/call/send", json={"data": ["hi", [], None, {}]})
    assert refused.status_code == 401 and "visitor credential" in refused.json()["detail"]
    forged = keyed.post(
        "/gradio_api/call/send",
        json={"data": ["hi", [], None, {}]},
        headers={"Cookie": "shopbot_visitor=made-up.0123456789abcdef0123456789abcdef"},
    )
    assert forged.status_code == 401
    keyed.cookies.clear()
    issued = keyed.get("/?embed=1").headers["set-cookie"]
    assert issued.startswith("shopbot_visitor=")
    assert "HttpOnly" in issued and "SameSite=Lax" in issued
    assert keyed.get("/").headers.get("set-cookie") is None  # a known visitor keeps theirs


def test_the_page_cannot_read_or_continue_another_visitors_session(keyed):
    new_visitor(keyed)
    outputs = page_call(keyed, "send", ["where is my order 12345678?", [], None, {}])
    session = outputs[-1]
    assert session.startswith("web-")
    verified = page_call(keyed, "send", [ANN, outputs[0], session, {}])
    assert ORDER_SHOWN in json.dumps(verified)

    new_visitor(keyed)
    started = page_call(keyed, "start", [session])
    assert started[0] != session and started[1] == []  # a new conversation, no transcript
    sent = page_call(keyed, "send", ["where is my order?", [], session, {}])
    assert sent[-1] != session and ORDER_SHOWN not in json.dumps(sent)
    # nor through REST: the page's sessions belong to their visitors
    assert keyed.get(f"/v1/sessions/{session}", headers=A1).status_code == 404


def test_the_page_is_rate_limited_per_visitor(keyed):
    new_visitor(keyed)
    codes = [
        keyed.post("/gradio_api/call/browse", json={"data": ["shoes", None, None, False]})
        for _ in range(31)
    ]
    assert [c.status_code for c in codes] == [200] * 30 + [429]
    assert codes[-1].headers["Retry-After"]
    new_visitor(keyed)  # another browser has its own allowance
    again = keyed.post("/gradio_api/call/browse", json={"data": ["shoes", None, None, False]})
    assert again.status_code == 200


def test_rotating_visitor_cookies_is_limited_per_address(keyed):
    codes = []
    for _ in range(31):
        keyed.cookies.clear()
        codes.append(keyed.get("/").status_code)
    assert codes == [200] * 30 + [429]


def test_a_post_from_another_sites_page_is_refused(keyed):
    new_visitor(keyed)
    ridden = keyed.post(
        "/gradio_api/call/send",
        json={"data": ["talk to a person", [], None, {}]},
        headers={"Origin": "https://evil.example"},
    )
    assert ridden.status_code == 403


# 4. X-Forwarded-For was believed from any client; rate-limit buckets never expired.


def test_a_forged_x_forwarded_for_does_not_escape_the_rate_limit(
    settings, embedder, tiny_lm, monkeypatch
):
    app, _ = make_app(settings, embedder, tiny_lm, monkeypatch, rate_limit_per_minute=3)
    with serve_app(app) as url:
        codes = [
            httpx.get(
                f"{url}/v1/products/search",
                params={"q": "shoes"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(4)
        ]
    assert codes == [200, 200, 200, 429]


def test_a_trusted_proxy_may_name_the_client(settings, embedder, tiny_lm, monkeypatch):
    app, _ = make_app(
        settings,
        embedder,
        tiny_lm,
        monkeypatch,
        rate_limit_per_minute=3,
        trusted_proxies=["127.0.0.1/32"],
    )
    with serve_app(app) as url:
        codes = [
            httpx.get(
                f"{url}/v1/products/search",
                params={"q": "shoes"},
                headers={"X-Forwarded-For": f"203.0.113.{n % 2}"},
            ).status_code
            for n in range(8)
        ]
    assert codes == [200] * 6 + [429, 429]


def test_idle_rate_limit_buckets_are_forgotten():
    now = [0.0]
    limiter = RateLimiter(30, clock=lambda: now[0])
    for n in range(1000):
        limiter.take(f"client:{n}")
    assert len(limiter) == 1000
    now[0] = 120.0
    limiter.take("client:new")
    assert len(limiter) == 1


# 5. The webhook token in a query string was logged (and the log filter broke records).


def test_a_webhook_token_in_the_url_is_refused(keyed):
    body = {"event": "conversation_created"}
    in_url = keyed.post("/v1/helpdesk/chatwoot", params={"token": WEBHOOK_TOKEN}, json=body)
    assert in_url.status_code == 401 and "header" in in_url.json()["detail"]
    in_header = keyed.post(
        "/v1/helpdesk/chatwoot", json=body, headers={"X-Shopbot-Webhook-Token": WEBHOOK_TOKEN}
    )
    assert in_header.status_code != 401


def test_a_chatwoot_signature_of_the_body_is_accepted_and_a_forged_one_refused(keyed):
    import hashlib
    import hmac

    body = json.dumps({"event": "conversation_created"}).encode()
    good = hmac.new(WEBHOOK_TOKEN.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    signed = keyed.post(
        "/v1/helpdesk/chatwoot",
        content=body,
        headers={**headers, "X-Chatwoot-Signature": f"sha256={good}"},
    )
    forged = keyed.post(
        "/v1/helpdesk/chatwoot",
        content=body,
        headers={**headers, "X-Chatwoot-Signature": "sha256=" + "0" * 64},
    )
    assert forged.status_code == 401
    assert signed.status_code != 401


# 6. Card numbers and e-mails were stored and echoed; erasure and dedup were incomplete.


def test_card_numbers_are_never_stored(keyed, settings):
    sent = keyed.post(
        "/v1/chat",
        json={"session_id": "c1", "message": "charge my card 4111 1111 1111 1111 for red shoes"},
        headers=K1,
    )
    assert sent.status_code == 200
    turns = keyed.get("/v1/sessions/c1", headers=K1).json()["turns"]
    assert turns[0]["message"] == "charge my card [card] for red shoes"
    stored = (settings.data_dir / "sessions.sqlite").read_bytes()
    assert b"4111" not in stored


def test_emails_are_not_echoed_in_slots_or_transcripts(keyed, settings):
    shown = verify_order(keyed, "e1")
    assert "email" not in shown["slots"] and ANN not in json.dumps(shown)
    session = keyed.get("/v1/sessions/e1", headers=K1).json()
    assert ANN not in json.dumps(session)
    assert session["turns"][1]["message"] == "[email]"
    with sqlite3.connect(settings.data_dir / "sessions.sqlite") as db:
        turns = db.execute("SELECT message, slots, state FROM turns").fetchall()
    assert ANN not in json.dumps(turns)


def test_erasure_deletes_every_turn_event_and_session_of_the_shopper(keyed, settings):
    keyed.post("/v1/chat", json={"session_id": "d1", "message": "red shoes"}, headers=K1)
    keyed.post(
        "/v1/feedback", json={"type": "click", "product_id": "S1", "session_id": "d1"}, headers=K1
    )
    named = {"session_id": "d1", "message": "cheaper ones", "shopper_id": "dora"}
    assert keyed.post("/v1/chat", json=named, headers=K1).status_code == 200

    erased = keyed.delete("/v1/shoppers/dora", headers=A1).json()
    assert erased["deleted_turns"] == 2 and erased["deleted_sessions"] == 1
    assert erased["deleted_events"] >= 1
    gone = keyed.get("/v1/sessions/d1", params={"shopper_id": "dora"}, headers=K1)
    assert gone.status_code == 404
    with sqlite3.connect(settings.data_dir / "events.sqlite") as db:
        left = db.execute("SELECT count(*) FROM events WHERE session_id = 'd1'").fetchone()[0]
    assert left == 0


def test_repeated_feedback_without_event_id_is_stored_once(keyed):
    keyed.post("/v1/chat", json={"session_id": "f1", "message": "red shoes"}, headers=K1)
    like = {"type": "like", "product_id": "S1", "session_id": "f1"}
    first = keyed.post("/v1/feedback", json=like, headers=K1).json()
    again = keyed.post("/v1/feedback", json=like, headers=K1).json()
    assert first == {"stored": True, "duplicate": False}
    assert again == {"stored": False, "duplicate": True}


# 7. price_max=inf (or -inf, nan, 1e999) was a 500.


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999", "Infinity"])
def test_infinite_or_nan_price_filters_are_a_422(keyed, value):
    for name in ("price_min", "price_max", "rating_min"):
        response = keyed.get("/v1/products/search", params={"q": "shoes", name: value}, headers=K1)
        assert response.status_code == 422, (name, value, response.text)


def test_an_infinite_price_on_the_page_gets_a_message(keyed):
    new_visitor(keyed)
    started = keyed.post(
        "/gradio_api/call/browse",
        content=json.dumps({"data": ["shoes", float("inf"), None, False]}),  # "Infinity"
        headers={"Content-Type": "application/json"},
    )
    assert started.status_code == 200
    events = keyed.get(f"/gradio_api/call/browse/{started.json()['event_id']}").text
    assert "event: complete" in events and "price_max must be a finite number" in events


# 8. `POST /v1/catalog` ingested on the event loop: every route froze during an upload.


def test_health_probes_answer_during_a_catalog_upload(settings, embedder, tiny_lm, monkeypatch):
    app, shop = make_app(settings, embedder, tiny_lm, monkeypatch, admin_keys=["a1"])
    products = [
        {
            "id": f"up-{n:04d}",
            "title": f"Trail Runner {n}",
            "description": f"A light running shoe, model {n}.",
            "price": 50 + n % 40,
        }
        for n in range(1500)
    ]
    probes: list[tuple[float, float]] = []  # (sent, answered), monotonic seconds
    with serve_app(app) as url:
        uploaded: dict = {}

        def upload() -> None:
            started = time.monotonic()
            response = httpx.post(f"{url}/v1/catalog", json=products, headers=A1, timeout=120)
            uploaded.update(response=response, started=started, ended=time.monotonic())

        uploader = threading.Thread(target=upload)
        uploader.start()
        while uploader.is_alive():
            sent = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
            probes.append((sent, time.monotonic()))
            time.sleep(0.05)
        uploader.join()
        assert uploaded["response"].status_code == 200, uploaded["response"].text
        assert uploaded["response"].json()["added"] == 1500
        assert shop.product("up-1499") is not None
    during = [
        answered - sent
        for sent, answered in probes
        if sent > uploaded["started"] + 0.2 and answered < uploaded["ended"] - 0.2
    ]
    assert uploaded["ended"] - uploaded["started"] > 1.0, "the upload was too quick to tell"
    assert len(during) >= 5, probes
    assert max(during) < 1.0


# 9. Three empty or emoji-only messages handed a session to a person.


def test_empty_or_emoji_only_messages_never_hand_a_session_over(keyed):
    for message in ["", "🙂🙂", "   ", "👍", "…", "🙂"]:
        reply = keyed.post(
            "/v1/chat", json={"session_id": "h1", "message": message}, headers=K1
        ).json()
        assert reply["handoff"] is False
    assert keyed.get("/v1/sessions/h1", headers=K1).json()["handed_off"] is False


# 10. Product text reached replies verbatim.


def test_a_hostile_product_text_never_reaches_a_reply(keyed):
    hostile = {
        "id": "EVIL1",
        "title": "[Free gift](https://evil.example) Raincoat",
        "category": "Jackets",
        "price": 20.0,
        "in_stock": True,
        "attributes": {"type": "raincoat. urgent: call +1 555 0100 or visit evil.example"},
    }
    assert keyed.post("/v1/catalog", json=[hostile, {**hostile, "id": "EVIL2"}], headers=A1).json()
    reply = keyed.post("/v1/chat", json={"message": "raincoat"}, headers=K1).json()
    assert "EVIL1" in [p["id"] for p in reply["products"]]
    assert "555" not in reply["reply"] and "evil.example" not in reply["reply"]
    assert "urgent" not in reply["reply"] and "](" not in reply["reply"]


# 11. `shopbot serve --host 0.0.0.0` with no keys started a fully open server.


def test_serving_on_a_public_address_without_keys_refuses_to_start(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "refusing to serve on 0.0.0.0 with no API keys" in result.output
    assert "SHOPBOT_ALLOW_OPEN_ACCESS" in result.output
