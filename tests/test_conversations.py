"""Whole conversations through the REST API with the real default model and shipped adapter:
an 8-turn shopping conversation and a 5-turn order-support conversation, as a shopper
would have them."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.dialogue.service import ChatService
from bot.shop import Shop
from bot.stores.orders import Order, OrderItem
from retrieval.policies import load_policy_docs
from tests.test_chat import PRODUCTS

pytestmark = pytest.mark.integration
PRICE = re.compile(r"\$\s?(\d[\d,]*(?:\.\d{1,2})?)")


@pytest.fixture
def api(settings, catalog, default_lm):
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    chats = ChatService(settings, shop, lm=default_lm)
    with TestClient(create_app(settings, shop=shop, chats=chats, ui=False)) as client:
        yield client, shop


def say(client: TestClient, session: str, message: str) -> dict:
    response = client.post("/v1/chat", json={"session_id": session, "message": message})
    assert response.status_code == 200, response.text
    reply = response.json()
    shown = {round(p["price"], 2) for p in reply["products"] if p["price"] is not None}
    for price in PRICE.findall(reply["reply"]):  # every price named is a shown product's
        assert round(float(price.replace(",", "")), 2) in shown, reply["reply"]
    return reply


def test_an_eight_turn_shopping_conversation(api):
    client, _ = api
    s = "shopper-8"

    hello = say(client, s, "hi there")
    assert hello["intent"] == "greeting" and hello["reply"]

    shoes = say(client, s, "show me running shoes")
    assert shoes["route"] == "search"
    assert {p["id"] for p in shoes["products"]} <= {"S1", "S2", "S3"} and shoes["products"]

    cheaper = say(client, s, "cheaper ones please")
    prices = [p["price"] for p in cheaper["products"]]
    assert cheaper["slots"].get("sort") == "cheapest" and prices == sorted(prices)

    red = say(client, s, "in red")
    assert red["slots"].get("colour") == "red"
    assert red["products"] and {p["id"] for p in red["products"]} <= {"S1", "S3"}

    second = say(client, s, "tell me more about the second one")
    assert second["route"] == "details"
    assert second["products"][0]["id"] == red["products"][1]["id"]

    compared = say(client, s, "compare the first two")
    assert compared["intent"] == "compare_products"
    assert compared["comparison"]["ids"] == [p["id"] for p in red["products"][:2]]

    returns = say(client, s, "what is your return policy?")
    assert returns["route"] == "policy" and returns["citations"]

    bye = say(client, s, "thanks, bye!")
    assert bye["intent"] in ("thanks", "goodbye") and not bye["handoff"]
    turns = client.get(f"/v1/sessions/{s}").json()["turns"]
    assert len(turns) == 8


def test_a_five_turn_order_support_conversation(api):
    client, shop = api
    now = time.time()
    order = Order(
        id="20481533",
        email="ann@example.com",
        status="processing",
        items=[OrderItem("S1", "Fleetfoot Road Runner Running Shoe – Red", 89.99)],
        total=89.99,
        shipping_address="1 High Street, Bristol",
        created_at=now,
        updated_at=now,
    )
    shop.orders.add([order])
    s = "support-5"

    asked = say(client, s, "where is my order?")
    assert asked["intent"] == "track_order" and asked["route"] == "order_ask"
    assert "order" in asked["reply"].lower()

    number = say(client, s, f"it's {order.id}")
    assert number["route"] == "order_ask" and "mail" in number["reply"].lower()

    shown = say(client, s, "ann@example.com")
    assert shown["route"] == "order" and shown["order"]["id"] == order.id
    assert "being prepared" in shown["reply"] and shown["order"]["status"] == "processing"

    cancelled = say(client, s, "please cancel the order")
    assert cancelled["intent"] == "cancel_order" and cancelled["route"] == "order"
    assert shop.orders.get(order.id).status == "cancelled"

    thanks = say(client, s, "thank you!")
    assert thanks["intent"] == "thanks"

    stranger = client.post(
        "/v1/chat", json={"session_id": "stranger", "message": f"where is order {order.id}?"}
    ).json()
    assert "ann@example.com" not in stranger["reply"] and stranger.get("order") is None
