"""A feature asked for in words ("leggings with pockets") is not a filter, yet the search
puts the products that have it first and the reply says, from the records, how many of
those shown have it."""

from __future__ import annotations

import pytest

from bot.nlu.parser import Parse
from bot.shop import Shop
from retrieval.catalog import Product
from retrieval.index import CatalogIndex


def leggings(number: int, features: str, description: str = "") -> Product:
    return Product(
        id=f"L{number}",
        title=f"Loomly Studio {number} Leggings – Black",
        description=description or "Soft leggings for the gym and the sofa.",
        category="Activewear",
        price=30.0 + number,
        rating=4.0,
        review_count=10,
        attributes={"colour": "black", "type": "leggings", "features": features},
    )


CATALOG = [
    leggings(1, "stretch, breathable"),
    leggings(2, "stretch, quick-dry"),
    leggings(3, "high-waisted, pockets"),
    leggings(4, "stretch", "Leggings with a deep side pocket for your phone."),
    Product(
        id="B1",
        title="Carryall Gym Bag – Black",
        description="A gym bag for your leggings, with pockets.",
        category="Activewear",
        price=25.0,
        attributes={"colour": "black", "type": "gym bag", "features": "pockets"},
    ),
]


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"exploration": 0.0})  # rankings without a random draw


@pytest.fixture
def shop(settings, embedder):
    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(CATALOG)
    opened = Shop(settings, catalog=catalog)
    yield opened
    opened.close()


def ask(assistant, monkeypatch, message: str, slots: dict, session: str = "f1"):
    parse = Parse("search_products", slots, 0.95)
    monkeypatch.setattr(assistant.parser, "parse", lambda text, previous=None: parse)
    return assistant.respond(message, session_id=session)


def test_products_with_the_feature_asked_for_come_first_and_the_reply_counts_them(
    assistant, monkeypatch
):
    turn = ask(assistant, monkeypatch, "black leggings with pockets", {"query": "leggings"})

    shown = [item.product.id for item in turn.products]
    assert set(shown[:2]) == {"L3", "L4"}  # listed as a feature, or said in the description
    assert "B1" not in shown[:2]  # it has pockets, but it is no pair of leggings
    assert turn.features == ["pockets"]
    leading = next(n for n, p in enumerate(shown) if p not in ("L3", "L4", "B1"))
    assert f"The first {leading} list pockets." in turn.reply


def test_the_feature_carries_over_to_a_follow_up(assistant, monkeypatch):
    ask(assistant, monkeypatch, "leggings with a pocket", {"query": "leggings with a pocket"})
    cheaper = ask(assistant, monkeypatch, "cheaper ones?", {"sort": "cheapest"})
    assert cheaper.features == ["pockets"]
    assert cheaper.products[0].product.id in {"L3", "L4"}


def test_a_feature_only_one_product_has_is_said_of_the_first_only(assistant, monkeypatch):
    turn = ask(assistant, monkeypatch, "quick dry leggings", {"query": "leggings"})
    assert turn.products[0].product.id == "L2"
    assert "The first one lists quick dry." in turn.reply
    plain = ask(assistant, monkeypatch, "black leggings", {"query": "leggings"}, session="f2")
    assert plain.features == [] and "list" not in plain.reply.split("Here are")[0]


def test_the_product_type_the_words_name_comes_first(settings, embedder, tiny_lm, monkeypatch):
    from bot.dialogue.engine import Assistant

    bags = [
        Product(id="T1", title="Packwell School Tote – Navy", category="Bags", price=40.0,
                description="A navy tote for school.",
                attributes={"colour": "navy", "type": "tote bag"}),
        Product(id="K1", title="Wanderkit Daytrip Backpack – Navy", category="Bags", price=60.0,
                attributes={"colour": "navy", "type": "backpack"}),
    ]  # fmt: skip
    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(bags)
    shop = Shop(settings, catalog=catalog)
    assistant = Assistant.open(settings, shop, lm=tiny_lm)
    try:
        slots = {"query": "navy backpack for school", "price_max": 80.0}
        turn = ask(assistant, monkeypatch, "navy backpack for school, $80 max", slots)
        assert [item.product.id for item in turn.products] == ["K1", "T1"]
    finally:
        assistant.close()
        shop.close()
