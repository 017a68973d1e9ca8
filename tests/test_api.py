"""The REST API for chat: turns, streaming, the OpenAI-compatible endpoint, keys, limits and
refusals. The app is the real one (Chroma, SQLite, the dialogue engine) with a tiny LM."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.dialogue.service import ChatService
from bot.shop import Shop
from retrieval.index import CatalogIndex
from retrieval.policies import load_policy_docs
from tests.test_chat import PRODUCTS

CHAT = {"Authorization": "Bearer chat-key"}
ADMIN = {"Authorization": "Bearer admin-key"}


def make_client(settings, embedder, tiny_lm, **changes) -> TestClient:
    settings = settings.model_copy(update=changes)
    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    chats = ChatService(settings, shop, lm=tiny_lm)
    return TestClient(create_app(settings, shop=shop, chats=chats, ui=False))


@pytest.fixture
def open_client(settings, embedder, tiny_lm):
    with make_client(settings, embedder, tiny_lm) as client:
        yield client


@pytest.fixture
def keyed_client(settings, embedder, tiny_lm):
    with make_client(
        settings, embedder, tiny_lm, chat_keys=["chat-key"], admin_keys=["admin-key"]
    ) as client:
        yield client


def events_of(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_chat_turn_returns_the_structured_reply_and_is_kept(open_client):
    reply = open_client.post("/v1/chat", json={"session_id": "s1", "message": "red shoes"})

    assert reply.status_code == 200
    body = reply.json()
    assert {"reply", "intent", "slots", "products", "handoff", "session_id"} <= set(body)
    assert body["session_id"] == "s1" and body["reply"]
    session = open_client.get("/v1/sessions/s1").json()
    assert [turn["message"] for turn in session["turns"]] == ["red shoes"]


def test_a_chat_without_a_session_id_starts_a_new_conversation(open_client):
    first = open_client.post("/v1/chat", json={"message": "hello"}).json()
    second = open_client.post("/v1/chat", json={"message": "hello"}).json()

    assert first["session_id"] != second["session_id"]


def test_the_stream_sends_pieces_then_the_whole_reply(open_client):
    response = open_client.post("/v1/chat/stream", json={"session_id": "s2", "message": "shoes"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.text)
    assert events[0][0] == "start" and events[-1][0] == "reply"
    assert {kind for kind, _ in events} <= {"start", "delta", "reply"}
    assert all(data["text"] for kind, data in events if kind == "delta")
    pieces = "".join(data["text"] for kind, data in events if kind == "delta")
    assert pieces.strip() == events[-1][1]["reply"]


def test_openai_clients_can_chat_with_and_without_streaming(open_client):
    request = {
        "model": "shopbot",
        "messages": [
            {"role": "system", "content": "You are a shop assistant."},
            {"role": "user", "content": "red running shoes"},
        ],
        "user": "oai-1",
    }
    response = open_client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert completion["choices"][0]["message"]["content"] == completion["shopbot"]["reply"]

    streamed = open_client.post("/v1/chat/completions", json={**request, "stream": True})
    lines = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert text.strip() == chunks[-1]["shopbot"]["reply"]
    turns = open_client.get("/v1/sessions/oai-1").json()["turns"]
    assert len(turns) == 2


def test_without_keys_chat_is_open_and_admin_routes_are_refused(open_client):
    assert open_client.post("/v1/chat", json={"message": "hi"}).status_code == 200
    refused = open_client.post("/v1/catalog", json=[], headers=ADMIN)
    assert refused.status_code == 403 and "SHOPBOT_ADMIN_KEYS" in refused.json()["detail"]


def test_with_keys_every_route_needs_one_of_the_right_scope(keyed_client):
    assert keyed_client.post("/v1/chat", json={"message": "hi"}).status_code == 401
    assert keyed_client.get("/v1/products/search", params={"q": "shoes"}).status_code == 401
    wrong = keyed_client.post("/v1/chat", json={"message": "hi"}, headers={"Authorization": "x"})
    assert wrong.status_code == 401
    assert keyed_client.post("/v1/chat", json={"message": "hi"}, headers=CHAT).status_code == 200
    assert keyed_client.post("/v1/chat", json={"message": "hi"}, headers=ADMIN).status_code == 200
    chat_on_admin = keyed_client.post("/v1/catalog", json=[], headers=CHAT)
    assert chat_on_admin.status_code == 403
    assert keyed_client.get("/healthz").status_code == 200  # probes need no key


def test_each_key_is_rate_limited(settings, embedder, tiny_lm):
    with make_client(
        settings, embedder, tiny_lm, chat_keys=["chat-key"], rate_limit_per_minute=3
    ) as client:
        codes = [
            client.get("/v1/products/search", params={"q": "shoes"}, headers=CHAT).status_code
            for _ in range(4)
        ]
        other = client.get(
            "/v1/products/search", params={"q": "shoes"}, headers={"Authorization": "Bearer k2"}
        )

    assert codes == [200, 200, 200, 429]
    assert other.status_code == 401


def test_bad_requests_get_clear_json_errors(open_client):
    malformed = open_client.post(
        "/v1/chat", content=b'{"message": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["detail"] == "malformed JSON body"
    missing = open_client.post("/v1/chat", json={"session_id": "s1"})
    assert missing.status_code == 422 and "message" in missing.json()["detail"]
    huge = open_client.post("/v1/chat", json={"message": "x" * 100_000})
    assert huge.status_code == 413 and "limit" in huge.json()["detail"]
    traversal = open_client.post("/v1/chat", json={"session_id": "../../etc", "message": "hi"})
    assert traversal.status_code == 422
    assert open_client.get("/v1/sessions/..%2F..%2Fetc").status_code in (400, 404)
    assert open_client.get("/v1/sessions/nobody").status_code == 404


def test_a_session_of_another_shopper_is_refused(open_client):
    mine = {"session_id": "ann-1", "message": "red shoes", "shopper_id": "ann"}
    assert open_client.post("/v1/chat", json=mine).status_code == 200

    intruder = open_client.post("/v1/chat", json={**mine, "shopper_id": "bob"})
    assert intruder.status_code == 404
    assert intruder.json() == {"detail": "no session 'ann-1'"}
    streamed = open_client.post("/v1/chat/stream", json={**mine, "shopper_id": "bob"})
    assert streamed.status_code == 404
    assert open_client.get("/v1/sessions/ann-1", params={"shopper_id": "bob"}).status_code == 404
    assert open_client.get("/v1/sessions/ann-1").status_code == 404
    assert open_client.get("/v1/sessions/ann-1", params={"shopper_id": "ann"}).status_code == 200


def test_an_admin_can_upload_products_and_bad_rows_are_reported(keyed_client):
    rows = [
        {"id": "N1", "title": "Trailblazer Hiking Boot", "price": 120, "category": "Shoes"},
        {"id": "N2", "price": "cheap"},
    ]
    report = keyed_client.post("/v1/catalog", json={"products": rows}, headers=ADMIN).json()

    assert report["added"] == 1 and report["rejected"] == 1
    assert report["rejected_rows"][0]["line"] == 2
    found = keyed_client.get(
        "/v1/products/search", params={"q": "hiking boot"}, headers=CHAT
    ).json()
    assert found["products"][0]["id"] == "N1"
    csv = "id,title,price\nN3,Summit Trekking Pole,35\n"
    uploaded = keyed_client.post(
        "/v1/catalog", content=csv, headers={**ADMIN, "content-type": "text/csv"}
    ).json()
    assert uploaded["added"] == 1


def test_the_widget_origin_may_call_the_api_when_allowed(settings, embedder, tiny_lm):
    with make_client(
        settings, embedder, tiny_lm, cors_origins=["https://shop.example.com"]
    ) as client:
        allowed = client.options(
            "/v1/chat",
            headers={
                "Origin": "https://shop.example.com",
                "Access-Control-Request-Method": "POST",
            },
        )
        other = client.options(
            "/v1/chat",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )

    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "access-control-allow-origin" not in other.headers


def test_concurrent_conversations_are_all_answered_and_kept(settings, embedder, tiny_lm):
    from concurrent.futures import ThreadPoolExecutor

    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(PRODUCTS)
    shop = Shop(settings, catalog=catalog)
    chats = ChatService(settings, shop, lm=tiny_lm)
    messages = ["red shoes", "a kettle", "hello", "where is my order?"] * 3

    def converse(number: int) -> list[dict]:
        session = f"c{number}"
        return [chats.reply(m, session) for m in (messages[number], "cheaper ones")]

    with ThreadPoolExecutor(max_workers=len(messages)) as pool:
        results = list(pool.map(converse, range(len(messages))))
    try:
        for number, replies in enumerate(results):
            assert all(reply.session_id == f"c{number}" for reply in replies)
            turns = chats.sessions.history(f"c{number}")
            assert [t["message"] for t in turns] == [messages[number], "cheaper ones"]
    finally:
        chats.close()
        shop.close()


def test_replies_written_at_once_equal_replies_written_one_by_one(
    settings, embedder, tiny_lm, monkeypatch
):
    """Three searches at once: their decoding passes run as batches, and every reply is the
    one the same search gets alone (the tiny model runs in fp32, so batching is exact)."""
    from bot.lm.decoding import feed_together
    from bot.nlu.parser import Parse

    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(PRODUCTS)
    shop = Shop(settings, catalog=catalog)
    searches = ["red shoes", "a kettle", "blue running shoes"]
    batches = []

    def counting(passes):
        batches.append(len(passes))
        feed_together(passes)

    monkeypatch.setattr("bot.lm.scheduler.feed_together", counting)

    def service() -> ChatService:
        chats = ChatService(settings, shop, lm=tiny_lm)

        def search(text, context=None):
            return Parse("search_products", {"query": text}, 0.9)

        monkeypatch.setattr(chats.open().parser, "parse", search)
        return chats

    alone = service()
    try:
        expected = [alone.reply(text, f"alone-{n}").reply for n, text in enumerate(searches)]
    finally:
        alone.close()
    together = service()
    try:
        streams = [together.stream(text, f"together-{n}") for n, text in enumerate(searches)]
        replies = [
            [e for e in stream if e["type"] == "reply"][0]["reply"].reply for stream in streams
        ]
    finally:
        together.close()
        shop.close()

    assert replies == expected
    assert max(batches) > 1


def test_two_messages_to_one_session_at_once_are_applied_in_order(
    settings, embedder, tiny_lm, monkeypatch
):
    """A search and its refinement sent at once, through REST and the OpenAI route: the
    second turn starts from the first one's saved slots, whichever channel it came by."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.nlu.parser import Parse

    slots = {"red running shoes": {"query": "running shoes", "colour": "red"}}
    slots["under $100"] = {"price_max": 100.0}

    with make_client(settings, embedder, tiny_lm) as client:
        chats = client.app.state.chats
        monkeypatch.setattr(
            chats.open().parser,
            "parse",
            lambda text, context=None: Parse("search_products", dict(slots[text]), 0.9),
        )
        first = chats.stream("red running shoes", "both-1")  # queued in this order
        second = chats.stream("under $100", "both-1")
        replies = [
            [e["reply"] for e in events if e["type"] == "reply"][0] for events in (first, second)
        ]
        assert replies[1].slots == {
            "query": "running shoes",
            "colour": "red",
            "price_max": 100.0,
        }

        def rest(text):
            return client.post("/v1/chat", json={"session_id": "both-2", "message": text})

        def openai(text):
            request = {"messages": [{"role": "user", "content": text}], "user": "both-2"}
            return client.post("/v1/chat/completions", json=request)

        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(rest, "red running shoes"), pool.submit(openai, "under $100")]
            assert [future.result().status_code for future in done] == [200, 200]
        turns = client.get("/v1/sessions/both-2").json()["turns"]
        state = chats.sessions.state("both-2").slots
    assert sorted(turn["message"] for turn in turns) == ["red running shoes", "under $100"]
    assert state == {"query": "running shoes", "colour": "red", "price_max": 100.0}


def test_the_chat_reply_is_one_typed_model_in_the_api_docs(open_client):
    schema = open_client.get("/openapi.json").json()
    ok = schema["paths"]["/v1/chat"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/Reply")
    fields = schema["components"]["schemas"]["Reply"]["properties"]
    assert {"reply", "products", "citations", "comparison", "handoff", "session_id"} <= set(fields)
    reply = open_client.post("/v1/chat", json={"message": "red shoes"}).json()
    assert set(reply) == set(fields)
    assert all(isinstance(p["score"], float) and p["image_url"] for p in reply["products"])


def test_openai_clients_find_the_model_list_first(keyed_client):
    headers = {"Authorization": "Bearer chat-key"}
    assert keyed_client.get("/v1/models").status_code == 401
    listing = keyed_client.get("/v1/models", headers=headers).json()
    assert listing["object"] == "list"
    assert [(m["id"], m["object"]) for m in listing["data"]] == [("shopbot", "model")]
    assert keyed_client.get("/v1/models/shopbot", headers=headers).json()["id"] == "shopbot"
    assert keyed_client.get("/v1/models/gpt-4", headers=headers).status_code == 404


def test_every_lm_pass_and_argmax_runs_on_the_lm_thread(settings, embedder, tiny_lm, monkeypatch):
    """Torch work on several threads is slow on a CPU (their OpenMP pools throttle each
    other): the service's turns, on threads of their own, leave all of it to the LM's."""
    import threading

    from bot.lm import decoding, scheduler

    threads = set()

    def traced(function):
        def run(*args, **kwargs):
            threads.add(threading.current_thread().name)
            return function(*args, **kwargs)

        return run

    monkeypatch.setattr(decoding.Decoder, "forward", traced(decoding.Decoder.forward))
    monkeypatch.setattr(decoding, "best_tokens", traced(decoding.best_tokens))
    monkeypatch.setattr(scheduler, "best_tokens", traced(scheduler.best_tokens))
    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(PRODUCTS)
    shop = Shop(settings, catalog=catalog)
    chats = ChatService(settings, shop, lm=tiny_lm)
    try:
        for text in ("red shoes", "tell me more about the first one", "hello"):
            assert chats.reply(text, "one-thread").reply
    finally:
        chats.close()
        shop.close()
    assert threads == {"shopbot-lm"}
