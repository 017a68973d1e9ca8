"""The operators' routes on a keyed server: the inbox of handed-over conversations, a person's
messages reaching the shopper's session, release, and the metrics of what happened.

The tiny random LM stands in for the parser, so each message says what the parser read;
everything else (routing, search, the stores, the HTTP app) is the real one.
"""

from __future__ import annotations

import csv
import io

import pytest

from bot.nlu.parser import Parse
from bot.stores.metrics import bot_metrics, metrics_table
from tests.test_chat import PRODUCTS

ADMIN = {"Authorization": "Bearer admin-key"}
CHAT = {"Authorization": "Bearer chat-key"}
DAY_1, DAY_2 = 1796000400.0, 1796086800.0  # 2026-11-30 and 2026-12-01, 01:00 UTC
PARSES = {
    "red running shoes": Parse("search_products", {"query": "running shoes", "colour": "red"}, 0.9),
    "blorp the fizzwidget now": Parse("complaint", {}, 0.2),  # unsure: asked to clarify
    "can I talk to a real person": Parse("contact_human_agent", {}, 0.95),
    "hello?": Parse("greeting", {}, 0.9),
    "thanks, that helps": Parse("thanks", {}, 0.95),
}


@pytest.fixture
def client(staffed_client):
    return staffed_client


def say(client, text, session="shop-1"):
    response = client.post("/v1/chat", json={"session_id": session, "message": text}, headers=CHAT)
    assert response.status_code == 200, response.text
    return response.json()


def test_no_admin_route_is_open_to_a_chat_key_or_to_no_key(client):
    routes = [
        ("get", "/v1/admin/handoffs", None),
        ("get", "/v1/admin/metrics", None),
        ("post", "/v1/sessions/shop-1/messages", {"text": "hello"}),
        ("post", "/v1/sessions/shop-1/release", None),
        ("get", "/v1/admin/sessions/shop-1", None),
        ("get", "/v1/admin/metrics.csv", None),
        ("get", "/v1/admin/turns", None),
        ("post", "/v1/admin/turns/1/review", {"verdict": "good"}),
    ]
    for method, path, body in routes:
        assert client.request(method, path, json=body).status_code == 401, path
        assert client.request(method, path, json=body, headers=CHAT).status_code == 403, path


def test_a_handoff_reaches_the_inbox_a_person_answers_and_release_gives_it_back(client):
    shown = say(client, "red running shoes")["products"]
    click = {"type": "click", "product_id": shown[0]["id"], "session_id": "shop-1"}
    assert client.post("/v1/feedback", json=click, headers=CHAT).status_code == 201
    assert say(client, "blorp the fizzwidget now")["route"] == "clarify"
    assert say(client, "can I talk to a real person")["handoff"]

    [waiting] = client.get("/v1/admin/handoffs", headers=ADMIN).json()["sessions"]
    assert waiting["session_id"] == "shop-1" and waiting["reason"] == "asked"
    assert waiting["last_message"] == "can I talk to a real person"
    assert waiting["since"].endswith("+00:00") and waiting["waiting_s"] >= 0

    sent = client.post(
        "/v1/sessions/shop-1/messages", json={"text": "Hi, Sam here. How can I help?",
                                              "author": "Sam"}, headers=ADMIN,
    )  # fmt: skip
    assert sent.status_code == 201
    silent = say(client, "hello?")
    assert (silent["route"], silent["reply"]) == ("handed_off", "")
    turns = client.get("/v1/sessions/shop-1", headers=CHAT).json()["turns"]
    agent = [t for t in turns if t["route"] == "agent"]
    assert agent == [{**agent[0], "reply": "Hi, Sam here. How can I help?", "author": "Sam"}]
    assert turns[-1]["message"] == "hello?"  # the shopper's reply to the person, kept

    assert client.post("/v1/sessions/shop-1/release", headers=ADMIN).json()["released"]
    assert client.get("/v1/admin/handoffs", headers=ADMIN).json() == {"sessions": []}
    assert say(client, "thanks, that helps")["route"] == "thanks"

    metrics = client.get("/v1/admin/metrics", headers=ADMIN).json()
    assert (metrics["conversations"], metrics["turns"]) == (1, 5)
    assert (metrics["handoffs"], metrics["handoff_rate"]) == (1, 1.0)
    assert metrics["handoff_reasons"] == {"asked": 1}
    assert metrics["resolved_without_handoff"] == 0.0
    assert metrics["impressions"] == len(shown) and metrics["clicks"] == 1
    assert metrics["ctr"] == round(1 / len(shown), 4)
    assert metrics["unanswered"] == [
        {"kind": "not understood", "turns": 1, "examples": ["blorp the fizzwidget now"]}
    ]
    assert metrics["zero_result_searches"] == 0
    assert {"intent": "search_products", "turns": 1} in metrics["top_intents"]
    assert metrics["cold_start"] == {  # the catalog was all added just now: every product is new
        "new_products": len(PRODUCTS), "new_products_shown": len(shown), "impression_share": 1.0,
    }  # fmt: skip


def test_messages_and_periods_are_checked(client):
    assert (
        client.post("/v1/sessions/nobody/messages", json={"text": "hi"}, headers=ADMIN).status_code
        == 404
    )
    assert (
        client.post("/v1/sessions/shop-1/messages", json={"text": ""}, headers=ADMIN).status_code
        == 422
    )
    bad = client.get("/v1/admin/metrics", params={"from": "yesterday"}, headers=ADMIN)
    assert bad.status_code == 400 and "ISO date" in bad.json()["detail"]
    empty = client.get(
        "/v1/admin/metrics", params={"from": "2020-01-01", "to": "2020-02-01"}, headers=ADMIN
    ).json()
    assert (empty["conversations"], empty["turns"], empty["ctr"]) == (0, 0, 0.0)
    assert empty["from"] == "2020-01-01T00:00:00+00:00"


def test_metrics_of_a_seeded_log():
    def turn(session, route, message="m", intent="search_products", shown=5, reason=None):
        ts = DAY_2 if session == "d" else DAY_1
        return {"session_id": session, "ts": ts, "message": message, "intent": intent,
                "route": route, "shown": shown, "handoff_reason": reason}  # fmt: skip

    turns = [
        turn("a", "search"), turn("a", "details", intent="product_details"),
        turn("b", "search", message="purple unicorn saddle", shown=0),
        turn("b", "out_of_scope", message="weather?", intent="out_of_scope"),
        turn("c", "policy", intent="check_refund_policy"),
        turn("c", "handoff", intent="contact_human_agent", reason="angry"),
        turn("d", "clarify", message="hmm what", intent="complaint"),
        turn("d", "clarify", message="hmm what", intent="complaint"),
    ]  # fmt: skip
    events = {"impression": 20, "click": 4, "add_to_cart": 2, "purchase": 1, "like": 3}
    daily = {"2026-11-30": {"impression": 15, "click": 3}, "2026-12-01": {"impression": 5}}
    shown = {"P1": 12, "P2": 6, "P3": 2}
    metrics = bot_metrics(turns, events, daily, None, None, ["P3", "P4"], shown)
    assert (metrics["conversations"], metrics["turns"]) == (4, 8)
    assert (metrics["handoff_rate"], metrics["handoff_reasons"]) == (0.25, {"angry": 1})
    assert metrics["resolved_without_handoff"] == 0.25  # a: its last turn was served
    assert (metrics["ctr"], metrics["add_to_cart_rate"], metrics["purchase_rate"]) == (
        0.2, 0.1, 0.05,
    )  # fmt: skip
    assert metrics["zero_result_searches"] == 1
    assert metrics["unanswered"][0] == {
        "kind": "not understood",
        "turns": 2,
        "examples": ["hmm what"],
    }
    assert {u["kind"] for u in metrics["unanswered"]} == {
        "not understood", "out of scope", "no products found",
    }  # fmt: skip
    assert metrics["top_intents"][0] == {"intent": "search_products", "turns": 2}
    assert metrics["cold_start"] == {
        "new_products": 2, "new_products_shown": 1, "impression_share": 0.1,
    }  # fmt: skip
    assert metrics["daily"] == [
        {"date": "2026-11-30", "conversations": 3, "turns": 6, "handoffs": 1,
         "impressions": 15, "clicks": 3, "ctr": 0.2},
        {"date": "2026-12-01", "conversations": 1, "turns": 2, "handoffs": 0,
         "impressions": 5, "clicks": 0, "ctr": 0.0},
    ]  # fmt: skip
    table = list(csv.reader(io.StringIO(metrics_table(metrics))))
    assert table[0] == [
        "date",
        "conversations",
        "turns",
        "handoffs",
        "impressions",
        "clicks",
        "ctr",
    ]
    assert table[1] == ["2026-11-30", "3", "6", "1", "15", "3", "0.2"]
    figures = dict(row for row in table[4:] if len(row) == 2)
    assert figures["handoff_rate"] == "0.25" and figures["handoff_reason:angry"] == "1"
    assert figures["intent:search_products"] == "2" and "hmm what" not in str(table)


def test_a_rest_client_hears_a_person_s_messages_on_the_session_stream(client, monkeypatch):
    import threading

    monkeypatch.setattr("bot.channels.streams.POLL_SECONDS", 0.05)
    assert say(client, "can I talk to a real person")["handoff"]
    assert client.get("/v1/sessions/nobody/stream", headers=CHAT).status_code == 404
    opened, events = threading.Event(), []

    def listen():
        with client.stream("GET", "/v1/sessions/shop-1/stream", headers=CHAT) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            opened.set()
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                elif line.startswith("data: ") and events[-1] == "agent":
                    events.append(line.removeprefix("data: "))
                if events[-1:] == ["released"]:
                    return

    listener = threading.Thread(target=listen)
    listener.start()
    assert opened.wait(10)
    message = {"text": "Hi, Sam here.", "author": "Sam"}
    assert (
        client.post("/v1/sessions/shop-1/messages", json=message, headers=ADMIN).status_code == 201
    )
    while len(events) < 2 and listener.is_alive():
        listener.join(0.05)
    assert client.post("/v1/sessions/shop-1/release", headers=ADMIN).json()["released"]
    listener.join(10)
    assert not listener.is_alive()
    assert events[0] == "agent" and '"text": "Hi, Sam here.", "author": "Sam"' in events[1]
    assert events[2:] == ["released"]
