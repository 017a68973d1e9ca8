"""The order store: lookups that need the e-mail, the rules for cancelling, re-addressing and
refunds, and the seeded demo orders."""

from __future__ import annotations

import json
import re

import pytest

from bot.nlu.schema import clean_slot
from bot.shop import Shop
from bot.stores.orders import (
    Order,
    OrderError,
    OrderItem,
    OrderStore,
    find_order_number,
    generate_demo_orders,
)
from retrieval.demo.catalog import generate_catalog

NOW = 1_760_000_000.0


def make_order(order_id: str, status: str, refund: str = "none", email="ann@example.com"):
    shipped = status in ("shipped", "delivered")
    return Order(
        id=order_id,
        email=email,
        status=status,
        items=[OrderItem("S1", "Fleetfoot Road Runner Running Shoe – Red", 89.99)],
        total=89.99,
        shipping_address="1 Oak Street, Springfield, IL 62704",
        created_at=NOW - 86_400,
        updated_at=NOW - 3600,
        tracking_number="1Z999" if shipped else None,
        carrier="UPS" if shipped else None,
        refund_status=refund,
    )


@pytest.fixture
def store(tmp_path):
    opened = OrderStore(tmp_path / "orders.sqlite")
    opened.add(
        [
            make_order("12345678", "processing"),
            make_order("23456789", "shipped"),
            make_order("34567890", "delivered"),
            make_order("45678901", "cancelled"),
            make_order("56789012", "delivered", refund="refunded"),
        ]
    )
    yield opened
    opened.close()


def test_find_needs_the_email_on_the_order_and_says_nothing_otherwise(store):
    assert store.find("12345678", "ann@example.com").status == "processing"
    assert store.find("12345678", "  ANN@example.com ").id == "12345678"  # case, spaces
    assert store.find("12345678", "bob@example.com") is None  # exists, wrong e-mail
    assert store.find("99999999", "ann@example.com") is None  # does not exist


def test_cancel_only_before_shipping(store):
    assert store.cancel("23456789").outcome == "already_shipped"
    assert store.get("23456789").status == "shipped"
    result = store.cancel("12345678")
    assert (result.ok, result.outcome, result.order.status) == (True, "cancelled", "cancelled")
    assert store.cancel("12345678").outcome == "already_cancelled"


def test_address_changes_only_before_shipping(store):
    result = store.change_address("12345678", " 9 Elm Lane,  Austin, TX 78701 ")
    assert result.outcome == "address_changed"
    assert store.get("12345678").shipping_address == "9 Elm Lane, Austin, TX 78701"
    assert store.change_address("23456789", "9 Elm Lane, Austin").outcome == "already_shipped"
    assert store.get("23456789").shipping_address.startswith("1 Oak Street")
    assert store.change_address("45678901", "9 Elm Lane, Austin").outcome == "cancelled"
    with pytest.raises(OrderError, match="1 to 200 characters, but got 0"):
        store.change_address("12345678", "   ")


def test_refunds_are_for_delivered_orders(store):
    assert store.request_refund("12345678").outcome == "not_delivered"
    assert store.request_refund("45678901").outcome == "cancelled"
    assert store.request_refund("56789012").outcome == "refund_done"
    result = store.request_refund("34567890")
    assert result.outcome == "refund_requested" and result.order.refund_status == "requested"
    assert store.request_refund("34567890").outcome == "refund_already_requested"


def test_orders_survive_reopening_the_store(store, tmp_path):
    store.cancel("12345678")
    store.close()
    reopened = OrderStore(tmp_path / "orders.sqlite")
    assert reopened.get("12345678").status == "cancelled"
    assert reopened.count() == 5
    reopened.close()


def test_summary_leaves_out_the_email_and_is_json(store):
    summary = store.get("23456789").summary()
    assert "email" not in summary and summary["tracking_number"] == "1Z999"
    assert summary["items"][0]["product_id"] == "S1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", summary["created_at"])
    json.dumps(summary)


def test_invalid_status_names_the_value():
    with pytest.raises(OrderError, match="but got 'lost'"):
        make_order("1", "lost")


def test_demo_orders_are_seeded_and_look_like_what_the_parser_reads():
    products = generate_catalog(60)
    orders = generate_demo_orders(products, 200, now=NOW)
    assert orders == generate_demo_orders(products, 200, now=NOW)
    assert len({o.id for o in orders}) == 200
    by_id = {p.id: p for p in products}
    for order in orders:
        assert re.fullmatch(r"\d{8}", order.id)
        assert clean_slot("order_id", order.id) == order.id  # the parser keeps it
        assert clean_slot("email", order.email) == order.email
        assert order.total == round(sum(i.price * i.quantity for i in order.items), 2)
        for item in order.items:
            assert by_id[item.product_id].price == item.price
            assert by_id[item.product_id].title == item.title
        assert (order.tracking_number is not None) == (order.status in ("shipped", "delivered"))
        assert order.refund_status == "none" or order.status == "delivered"
    statuses = {o.status for o in orders}
    assert statuses == {"processing", "shipped", "delivered", "cancelled"}
    assert len({o.email for o in orders}) < 200  # some shoppers ordered more than once


def test_order_numbers_are_found_in_messages():
    assert find_order_number("it's 12345678") == "12345678"
    assert find_order_number("order #12345678 please") == "12345678"
    assert find_order_number("mail a12345678@x.com") is None
    assert find_order_number("where is my order?") is None


def test_shop_seeds_demo_orders_from_the_demo_products_it_holds(settings, catalog):
    catalog.ingest_products(generate_catalog(40))
    shop = Shop(settings, catalog=catalog)
    try:
        assert shop.ensure_demo_orders() == 200
        assert shop.ensure_demo_orders() == 0  # only into an empty store
        some = generate_demo_orders(generate_catalog(40))[0]
        stored = shop.orders.get(some.id)
        assert stored.items == some.items and stored.email == some.email
        assert (settings.data_dir / "orders.sqlite").is_file()
    finally:
        shop.close()


def test_a_store_with_its_own_catalog_gets_no_demo_orders(settings, catalog):
    catalog.ingest_products(
        [p.model_copy(update={"id": f"own-{p.id}"}) for p in generate_catalog(5)]
    )
    shop = Shop(settings, catalog=catalog)
    try:
        assert shop.ensure_demo_orders() == 0 and shop.orders.count() == 0
    finally:
        shop.close()
