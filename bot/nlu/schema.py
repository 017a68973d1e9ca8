"""The parse of one shopper message: an intent name and its slots, and their text form.

The LM is trained to write a parse as one short line, which is cheap to generate:

    >>> format_parse("search_products", {"category": "shoes", "colour": "red", "price_max": 80})
    'search_products | category=shoes; colour=red; price_max=80'

`read_parse` turns whatever the LM wrote back into a valid parse: unknown intents become None
(the caller falls back), unknown slot names and malformed values are dropped, numbers are
parsed, ids are checked. It never raises.

This module imports nothing beyond the standard library, so the training machine needs only
torch, transformers and peft.
"""

from __future__ import annotations

import re
from typing import Any

from bot.redact import EMAIL

CUSTOMER_SERVICE_INTENTS = (
    "cancel_order",
    "change_order",
    "change_shipping_address",
    "check_cancellation_fee",
    "check_invoice",
    "check_payment_methods",
    "check_refund_policy",
    "complaint",
    "contact_customer_service",
    "contact_human_agent",
    "create_account",
    "delete_account",
    "delivery_options",
    "delivery_period",
    "edit_account",
    "get_invoice",
    "get_refund",
    "newsletter_subscription",
    "payment_issue",
    "place_order",
    "recover_password",
    "registration_problems",
    "review",
    "set_up_shipping_address",
    "switch_account",
    "track_order",
    "track_refund",
)
SHOPPING_INTENTS = ("search_products", "product_details", "compare_products")
CONVERSATION_INTENTS = ("greeting", "goodbye", "thanks", "out_of_scope")
HANDOFF_INTENTS = ("contact_human_agent",)  # also customer-service intents
INTENTS = CUSTOMER_SERVICE_INTENTS + SHOPPING_INTENTS + CONVERSATION_INTENTS

# Slot names in the order the LM writes them.
SLOT_NAMES = (
    "query",
    "category",
    "brand",
    "colour",
    "size",
    "material",
    "price_min",
    "price_max",
    "sort",
    "product_refs",
    "order_id",
    "email",
)
TEXT_SLOTS = ("query", "category", "brand", "colour", "size", "material")
PRICE_SLOTS = ("price_min", "price_max")
SORTS = ("cheapest", "most_expensive", "best_rated", "most_popular")
MAX_SLOT_CHARS = 80

_ORDER_ID = re.compile(r"^[A-Za-z0-9-]{3,32}$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def format_parse(intent: str, slots: dict[str, Any]) -> str:
    """The one-line form of a parse; slots in SLOT_NAMES order, empty ones left out."""
    parts = []
    for name in SLOT_NAMES:
        value = slots.get(name)
        if value in (None, "", []):
            continue
        if name == "product_refs":
            value = ",".join(str(ref) for ref in value)
        elif name in PRICE_SLOTS:
            value = f"{float(value):g}"
        parts.append(f"{name}={value}")
    return f"{intent} | {'; '.join(parts)}" if parts else intent


def read_parse(text: str) -> tuple[str | None, dict[str, Any]]:
    """Read an LM-written parse back, keeping only what is valid; never raises.

    >>> read_parse("search_products | colour=red; price_max=abc; nonsense=1")
    ('search_products', {'colour': 'red'})
    >>> read_parse("no idea")
    (None, {})
    """
    head, _, tail = text.strip().partition("|")
    intent = head.strip()
    slots: dict[str, Any] = {}
    for part in tail.split(";"):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if sep and name in SLOT_NAMES and name not in slots:
            value = clean_slot(name, raw)
            if value is not None:
                slots[name] = value
    return (intent if intent in INTENTS else None), slots


def clean_slot(name: str, raw: Any) -> Any:
    """One slot value in its schema type, or None when it is not valid for that slot."""
    if raw is None:
        return None
    if name == "product_refs":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        refs = []
        for item in items:
            item = str(item).strip()
            if item.isdigit() and 1 <= int(item) <= 50 and int(item) not in refs:
                refs.append(int(item))
        return refs or None
    if name in PRICE_SLOTS:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            number = float(raw)
        else:
            match = _NUMBER.search(str(raw).replace(",", ""))
            if match is None:
                return None
            number = float(match.group())
        return number if 0 <= number < 1e9 else None
    value = " ".join(str(raw).split())
    if not value or len(value) > MAX_SLOT_CHARS:
        return None
    if name == "sort":
        return value if value in SORTS else None
    if name == "email":
        return value.lower() if EMAIL.fullmatch(value) else None
    if name == "order_id":
        return value if _ORDER_ID.match(value) and any(c.isdigit() for c in value) else None
    return value.lower() if name != "query" else value


def clean_slots(slots: dict[str, Any]) -> dict[str, Any]:
    """Only the valid slots of a dict, each in its schema type, with price_min <= price_max."""
    cleaned = {}
    for name in SLOT_NAMES:
        value = clean_slot(name, slots.get(name))
        if value is not None:
            cleaned[name] = value
    low, high = cleaned.get("price_min"), cleaned.get("price_max")
    if low is not None and high is not None and low > high:
        cleaned["price_min"], cleaned["price_max"] = high, low
    return cleaned


CARRIED_SLOTS = TEXT_SLOTS + PRICE_SLOTS + ("sort",)


def merge_slots(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The conversation's slots after a message: `new` on top of what carries over.

    Text slots, prices and sort carry over while the shopper refines one search. A category
    other than the previous one (also where there was none), or a query other than the
    previous query, starts afresh: a new kind of product keeps nothing. product_refs,
    order_id and email belong to one message and never carry. A carried price bound that
    contradicts a new one is dropped.

    >>> state = {"query": "running shoes", "colour": "red", "price_max": 80.0, "product_refs": [2]}
    >>> merge_slots(state, {"sort": "cheapest"})
    {'query': 'running shoes', 'colour': 'red', 'price_max': 80.0, 'sort': 'cheapest'}
    >>> merge_slots(state, {"colour": "blue", "price_min": 100.0})
    {'query': 'running shoes', 'colour': 'blue', 'price_min': 100.0}
    >>> merge_slots(state, {"query": "blender", "brand": "whirlo"})
    {'query': 'blender', 'brand': 'whirlo'}
    """
    previous = previous or {}
    new_category, new_query = new.get("category"), new.get("query")
    switched = (new_category and new_category != previous.get("category")) or (
        new_query and previous.get("query") and new_query.lower() != previous["query"].lower()
    )
    merged = {} if switched else {k: v for k, v in previous.items() if k in CARRIED_SLOTS}
    merged.update(new)
    low, high = merged.get("price_min"), merged.get("price_max")
    if low is not None and high is not None and low > high:
        del merged["price_max" if "price_min" in new else "price_min"]
    return clean_slots(merged)
