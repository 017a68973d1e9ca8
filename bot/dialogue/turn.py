"""A chat turn as data: what the message was taken to mean, where it was routed, what the
reply draws on, and what it changes in the session. The engine fills it in; nothing in it
reaches back into the engine, and it is saved once, when the reply is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.grounding import (
    MAX_DESCRIPTION_CHARS,
    MAX_TRAIT_CHARS,
    money,
    plain_text,
    policy_quote,
    shown_title,
)
from bot.dialogue.reply import Reply
from bot.nlu.parser import Parse
from bot.nlu.schema import SHOPPING_INTENTS
from bot.stores.orders import Order
from bot.stores.sessions import SessionChanges
from retrieval.ranking import RankedProduct


def without_email(slots: dict[str, Any]) -> dict[str, Any]:
    """Slots as stored and shown: the order check's e-mail stays out of both."""
    return {name: value for name, value in slots.items() if name != "email"}


@dataclass
class Turn:
    """A chat turn once parsed and routed; `Assistant.stream_reply` writes and saves it."""

    session_id: str
    shopper_id: str | None
    message: str
    parse: Parse
    route: str
    state: dict[str, Any] = field(default_factory=dict)
    products: list[RankedProduct] = field(default_factory=list)
    docs: list[Any] = field(default_factory=list)
    detailed: bool = False
    positions: list[int] = field(default_factory=list)  # numbers the shopper saw them under
    fixed_reply: str | None = None
    reply: str = ""
    removed: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    order: Order | None = None  # the order shown: only ever one this session has proved
    follow_ups: list[str] = field(default_factory=list)
    handoff_reason: str | None = None  # asked, angry or failures
    shown_before: list[str] = field(default_factory=list)  # what "the second one" refers to
    changes: SessionChanges = field(default_factory=SessionChanges)
    relaxed: list[str] = field(default_factory=list)  # filters a search dropped to find any
    features: list[str] = field(default_factory=list)  # asked for in words ("with pockets")
    ran_out: str = ""  # "anything else?" found no more of these ("running shoes")
    done: bool = False

    @property
    def handoff(self) -> bool:
        return self.route in ("handoff", "handed_off")

    def shown(self) -> list[Any]:
        """The products the reply talks about, each at the number the shopper saw it under
        (None where a number is skipped), so "[2]" in the reply is the second one shown."""
        shown: list[Any] = [item.product for item in self.products]
        if self.positions:
            shown = [None] * max(self.positions)
            for position, item in zip(self.positions, self.products, strict=True):
                shown[position - 1] = item.product
        return shown

    def shown_ids(self) -> list[str]:
        """What the session's next turn refers back to: a details turn keeps the list the
        shopper picked from."""
        if self.route == "details":
            return list(self.shown_before)
        return [item.product.id for item in self.products]

    def to_reply(self) -> Reply:
        """The structured reply, typed (see `bot.dialogue.reply.Reply`)."""
        return Reply.model_validate(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The structured reply (JSON-ready). `shopbot chat --json` and the REST API send it:
        reply, intent, slots, confidence, route, handoff, products (cards with their ranking
        reasons), sources and citations (policy sections used, with a quote), follow_ups
        (suggested next messages), comparison (for compare_products), order (the verified
        order shown, else None), removed (sentences the grounding check dropped), timings_ms.
        """
        quoted = f"{self.message} {self.reply}"
        return {
            "session_id": self.session_id,
            "reply": self.reply,
            "intent": self.parse.intent,
            "slots": without_email(
                self.state if self.parse.intent in SHOPPING_INTENTS else self.parse.slots
            ),
            "confidence": self.parse.confidence,
            "route": self.route,
            "handoff": self.handoff,
            "products": [product_card(item) for item in self.products],
            "sources": [doc.id for doc in self.docs],
            "citations": [
                {
                    "id": doc.id,
                    "title": doc.title,
                    "section": doc.section,
                    "quote": policy_quote(doc, quoted),
                }
                for doc in self.docs
            ],
            "follow_ups": self.follow_ups,
            "comparison": (
                comparison_table([item.product for item in self.products])
                if self.route == "details" and self.parse.intent == "compare_products"
                else None
            ),
            "order": self.order.summary() if self.order is not None else None,
            "removed": self.removed,
            "timings_ms": self.timings,
        }


def product_card(item: RankedProduct) -> dict[str, Any]:
    """A shown product as the reply's JSON carries it."""
    product = item.product
    return {
        **product.summary(),
        "review_count": product.review_count,
        "image_url": product.image_url or f"/images/{product.id}.svg",
        "score": round(item.score, 4),
        "reasons": [reason.to_dict() for reason in item.reasons],
    }


def comparison_table(products: Sequence[Any]) -> dict[str, Any] | None:
    """Products side by side: one column per product, one row per attribute any of them has.

    Values are display text ("$89.99", "4.6 (120 reviews)", "Yes"); "" where a product lacks
    the attribute. None for fewer than two products.
    """
    if len(products) < 2:
        return None

    def rating(p: Any) -> str:
        return f"{p.rating:.1f} ({p.review_count or 0} reviews)" if p.rating is not None else ""

    def field(value: Any) -> str:  # record text is shown as plain text only
        return plain_text(value, MAX_TRAIT_CHARS)

    rows = [
        ("Price", lambda p: money(p.price, p.currency) if p.price is not None else ""),
        ("Rating", rating),
        ("Brand", lambda p: field(p.brand)),
        ("Category", lambda p: field(p.category)),
        ("Colour", lambda p: field(p.attributes.get("colour"))),
        ("Material", lambda p: field(p.attributes.get("material"))),
        ("Sizes", lambda p: field(p.attributes.get("size"))),
        ("Features", lambda p: plain_text(p.attributes.get("features"), MAX_DESCRIPTION_CHARS)),
        ("In stock", lambda p: "Yes" if p.in_stock else "No"),
    ]
    table = []
    for name, value in rows:
        values = [str(value(p)) for p in products]
        if any(values):
            table.append({"attribute": name, "values": values})
    return {
        "ids": [p.id for p in products],
        "columns": [shown_title(p) for p in products],
        "rows": table,
    }
