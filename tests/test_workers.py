"""Two workers on one PostgreSQL database and one Chroma server act as one bot.

Each worker is a whole app (its own data dir, its own stores' connections, its own chat
service) as `shopbot serve` builds it; only the parser is scripted (the tiny test LM reads
noise), so what is tested is what the workers share: the catalog, a conversation's slots,
its verified order, its handoff, and the order of its turns.
"""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.dialogue.service import ChatService
from bot.nlu.parser import Parse
from bot.shop import Shop
from retrieval.catalog import Product
from retrieval.events import FeedbackEvent
from retrieval.filters import ProductFilters
from retrieval.index import CatalogIndex
from retrieval.policies import load_policy_docs
from tests.test_dialogue import ANN, PRODUCTS, make_order

CHAT = {"Authorization": "Bearer chat-key"}
ADMIN = {"Authorization": "Bearer admin-key"}
JACKETS = [
    Product(id=f"J{number}", title=f"Drizzle Rain Jacket {name}", category="Jackets",
            brand="Drizzle", price=price, rating=4.2,
            attributes={"colour": colour, "type": "rain jacket"})
    for number, (name, colour, price) in enumerate(
        [("Storm", "red", 140.0), ("Harbor", "blue", 95.0), ("Mist", "blue", 180.0),
         ("Fjord", "green", 70.0)]
    )
]  # fmt: skip
PARSES = {
    "rain jackets": Parse("search_products", {"query": "rain jacket"}, 0.9),
    "something cheaper, in blue": Parse("search_products", {"colour": "blue", "price_max": 139.0},
                                        0.9),
    "red ones": Parse("search_products", {"colour": "red"}, 0.9),
    "under $150": Parse("search_products", {"price_max": 150.0}, 0.9),
    "where is my order 12345678?": Parse("track_order", {"order_id": "12345678"}, 0.95),
    ANN: Parse("contact_customer_service", {"email": ANN}, 0.4),
    "and where is it now?": Parse("track_order", {}, 0.95),
    "can I talk to a real person": Parse("contact_human_agent", {}, 0.95),
}  # fmt: skip
HELLO = Parse("greeting", {}, 0.9)


@pytest.fixture
def workers(
    request, settings, embedder, tiny_lm, database_url, chroma_server, tmp_path, monkeypatch
):
    """Two apps sharing `database_url` and a Chroma server, each with its own data dir (and
    the settings a test's indirect parameter changes)."""
    shops, opened = [], []
    collection = f"products_{tmp_path.name[-8:].replace('-', '_')}"
    for name in ("a", "b"):
        each = settings.model_copy(
            update={
                "data_dir": tmp_path / name,
                "database_url": database_url,
                "chroma_url": chroma_server,
                "collection": collection,
                "policy_collection": f"{collection}_policies",
                "chat_keys": ["chat-key"],
                "admin_keys": ["admin-key"],
                **getattr(request, "param", {}),
            }
        )
        shops.append(Shop(each, catalog=CatalogIndex.open(each, embedder=embedder)))
        if name == "a":  # the store's catalog, before either starts (else: the demo one)
            shops[0].catalog.ingest_products(PRODUCTS)
            shops[0].catalog.policies.ingest(load_policy_docs())
        chats = ChatService(each, shops[-1], lm=tiny_lm)
        monkeypatch.setattr(chats.open().parser, "parse", lambda text, *_: PARSES.get(text, HELLO))
        client = TestClient(create_app(each, shop=shops[-1], chats=chats, ui=False))
        opened.append(client.__enter__())
    yield opened
    for client in opened:
        client.__exit__(None, None, None)


def say(worker, text, session="s-1"):
    response = worker.post("/v1/chat", json={"session_id": session, "message": text}, headers=CHAT)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_catalog_update_through_one_worker_is_searched_through_the_other(workers):
    a, b = workers
    upload = "\n".join(product.model_dump_json() for product in JACKETS)
    kind = {"Content-Type": "application/x-ndjson"}
    added = a.post("/v1/catalog", content=upload, headers={**ADMIN, **kind})
    assert added.status_code == 200, added.text
    found = b.get("/v1/products/search", params={"q": "rain jacket"}, headers=CHAT).json()
    assert {product["id"] for product in found["products"][:4]} == {p.id for p in JACKETS}
    assert say(b, "rain jackets")["products"]


def test_a_conversation_alternating_between_workers_keeps_its_slots_order_and_handoff(workers):
    a, b = workers
    a.app.state.shop.catalog.ingest_products(JACKETS)
    a.app.state.shop.orders.add([make_order("12345678", "shipped")])

    first = say(a, "rain jackets")
    assert {p["id"] for p in first["products"]} <= {p.id for p in JACKETS}
    cheaper = say(b, "something cheaper, in blue")
    assert [p["id"] for p in cheaper["products"]] == ["J1"]  # the blue jacket under $139
    assert cheaper["slots"]["query"] == "rain jacket"

    assert say(a, "where is my order 12345678?")["route"] == "order_ask"
    shown = say(b, ANN)
    assert shown["route"] == "order" and shown["order"]["id"] == "12345678"
    again = say(a, "and where is it now?")  # the order proved on b, known on a
    assert again["route"] == "order" and again["order"]["id"] == "12345678"

    assert say(b, "can I talk to a real person")["handoff"]
    [waiting] = a.get("/v1/admin/handoffs", headers=ADMIN).json()["sessions"]
    assert waiting["session_id"] == "s-1"
    assert (say(a, "hello?")["route"], say(b, "hello?")["reply"]) == ("handed_off", "")
    assert b.post("/v1/sessions/s-1/release", headers=ADMIN).status_code == 200
    assert say(a, "red ones")["route"] == "search"


def test_two_messages_sent_at_once_to_both_workers_are_both_kept_and_applied_in_order(workers):
    a, b = workers
    a.app.state.shop.catalog.ingest_products(JACKETS)
    for attempt in range(3):
        session = f"s-race-{attempt}"
        say(a, "rain jackets", session)
        start, replies = threading.Barrier(2), {}

        def send(worker, text, session=session, start=start, replies=replies):
            start.wait()
            replies[text] = say(worker, text, session)

        threads = [
            threading.Thread(target=send, args=(a, "red ones")),
            threading.Thread(target=send, args=(b, "under $150")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        turns = a.get(f"/v1/sessions/{session}", headers=CHAT).json()["turns"]
        assert [t["message"] for t in turns][1:] in (
            ["red ones", "under $150"],
            ["under $150", "red ones"],
        )
        # The later turn started from the earlier one's slots: red and under $150 both.
        later = replies[turns[-1]["message"]]
        assert later["slots"]["colour"] == "red" and later["slots"]["price_max"] == 150
        assert [p["id"] for p in later["products"]] == ["J0"]


@pytest.mark.parametrize("workers", [{"rate_limit_per_minute": 3}], indirect=True)
def test_a_rate_limit_holds_for_the_store_not_for_each_worker(workers):
    a, b = workers
    search = {"params": {"q": "running shoes"}, "headers": CHAT}
    codes = [worker.get("/v1/products/search", **search).status_code for worker in (a, b, a, b)]
    assert codes == [200, 200, 200, 429]


def test_what_the_scorer_learns_on_one_worker_reaches_the_other(workers, monkeypatch):
    import bot.shop

    a, b = (worker.app.state.shop for worker in workers)
    monkeypatch.setattr(bot.shop, "SHARED_LEARNING_S", 0.0)
    b.refresh_weights()
    before = b.catalog.scorer.posteriors.params(["S3"])
    shown = a.recommend("running shoes", 3, ProductFilters(), session_id="s-learn")
    assert "S3" in [item.product.id for item in shown]
    assert a.record_feedback(FeedbackEvent("like", "S3", session_id="s-learn"))
    b.refresh_weights()
    assert b.catalog.scorer.posteriors.params(["S3"]) != before

    trained = a.weight_store.save({**b.catalog.scorer.weights, "rating": 2.5}, {}, examples=60)
    b.refresh_weights()
    assert b.catalog.scorer.weights["rating"] == 2.5 and trained.version == 1


def test_serving_several_workers_without_shared_stores_refuses_to_start(tmp_path):
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, ["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "--workers 2 needs shared stores" in result.output
    assert "DATABASE_URL and CHROMA_URL" in result.output
    assert not (tmp_path / "sessions.sqlite").exists()  # nothing was started


def test_a_brand_added_through_one_worker_is_known_to_the_others_parser(workers):
    a, b = workers
    parser = b.app.state.chats.open().parser
    say(b, "hello?")
    assert parser.check_slots({"brand": "drizzle"}, "drizzle jackets") == {}  # unknown yet
    a.app.state.shop.catalog.ingest_products(JACKETS)
    say(b, "hello?")  # the next turn on the other worker sees the new catalog
    assert parser.check_slots({"brand": "drizzle"}, "drizzle jackets") == {"brand": "drizzle"}
