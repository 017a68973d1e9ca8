"""Order support in the chat: the order number and e-mail are collected, checked against the
order store, and the request is carried out and answered from `prompts/orders.toml`.

Orders (track, cancel, change, change the address, refund, refund status, invoice) are
answered from the order store with the templates of `prompts/orders.toml`, never by the LM.
An order is shown only to a session that has given its number and the e-mail on it; an
unknown number and a wrong e-mail get the same reply. A request missing either waits in
the session, so "it's 12345678" on the next turn completes it.

The desk decides and acts on the order store; it does not write the session. `answer`
returns an `OrderOutcome`, whose `context` the engine saves with the turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.grounding import money
from bot.nlu.parser import Parse
from bot.nlu.schema import EMAIL, HANDOFF_INTENTS
from bot.prompts import prompt_table, render
from bot.settings import Settings
from bot.stores.orders import Order, OrderError, OrderStore, find_order_number, iso_date
from bot.stores.sessions import SessionState

ORDER_INTENTS = (
    "track_order",
    "cancel_order",
    "change_order",
    "change_shipping_address",
    "get_refund",
    "track_refund",
    "check_invoice",
    "get_invoice",
)
# Words that say "here is what you asked for" around an order number or e-mail.
FILLER_WORDS = {
    *("it", "its", "it's", "is", "my", "the", "a", "an", "this", "that's", "thats", "one"),
    *("order", "number", "no", "id", "email", "e-mail", "mail", "address", "with"),
    *("here", "you", "go", "sure", "yes", "ok", "okay", "sorry", "oh", "and", "of", "for"),
    *("please", "thanks", "thank", "i", "i'm", "am", "was", "use", "used", "at", "on"),
}
STREET_WORDS = re.compile(
    r"\b(street|st|road|rd|avenue|ave|lane|ln|drive|dr|court|ct|way|blvd|boulevard|place|pl|"
    r"square|sq|highway|hwy|apt|suite|unit)\b",
    re.I,
)


def only_details(text: str) -> bool:
    """Whether a message is nothing but an order number and/or e-mail ("it's 12345678",
    "my email is a@b.com"), so it answers the question asked rather than asking anew."""
    rest = EMAIL.sub(" ", text)
    number = find_order_number(rest)
    if number:
        rest = rest.replace(number, " ")
    words = re.findall(r"[a-z][a-z'-]*", rest.lower())
    return all(word in FILLER_WORDS for word in words)


def looks_like_address(text: str) -> bool:
    """A one-line postal address: a number, words, and a comma or a street word."""
    if not 8 <= len(text) <= 200 or "?" in text or EMAIL.search(text):
        return False
    has_number = any(c.isdigit() for c in text)
    words = re.findall(r"[A-Za-z]{2,}", text)
    return has_number and len(words) >= 2 and ("," in text or bool(STREET_WORDS.search(text)))


def order_values(order: Order, store: str) -> dict[str, Any]:
    """The variables an order reply template may use, from the order record (with the
    words of `prompts/orders.toml` for a carrier or tracking number not known yet)."""
    unknown = prompt_table("orders.toml")["unknown"]
    items = "; ".join(
        item.title + (f" (x{item.quantity})" if item.quantity > 1 else "") for item in order.items
    )
    return {
        "store": store,
        "order_id": order.id,
        "status": order.status,
        "items": items,
        "total": money(order.total, order.currency),
        "created": iso_date(order.created_at),
        "updated": iso_date(order.updated_at),
        "address": order.shipping_address,
        "carrier": order.carrier or unknown["carrier"],
        "tracking": order.tracking_number or unknown["tracking"],
        "refund_status": order.refund_status,
    }


@dataclass
class OrderOutcome:
    """What an order turn comes to: its route ("order", "order_ask", "order_not_found"),
    the reply, the parse with the order number filled in, the verified order shown (if
    any), and the session's order context to save (`pending`, `verified_email`,
    `current_order`)."""

    route: str
    reply: str
    parse: Parse
    order: Order | None = None
    context: dict[str, Any] = field(default_factory=dict)


class OrderDesk:
    """Answers a session's order requests; the dialogue hands it the turns about orders."""

    def __init__(self, settings: Settings, orders: OrderStore) -> None:
        self.settings = settings
        self.orders = orders
        self.texts = prompt_table("orders.toml")

    def request(self, parse: Parse, text: str, session: SessionState) -> str | None:
        """The order request this message makes or continues, or None.

        With a request waiting: a bare order number or e-mail ("it's 12345678") continues
        it whatever the parser made of the words; a new order request ("cancel it") takes
        over what was collected; a postal address answers "what's the new address?";
        anything else drops the waiting request. Without one: a confident order intent.
        """
        confident = parse.confidence >= self.settings.parse_confidence
        pending = session.pending
        if pending and pending.get("awaiting") == "address":
            other_request = parse.intent in ORDER_INTENTS + HANDOFF_INTENTS and confident
            if looks_like_address(text) and not (
                other_request and parse.intent != "change_shipping_address"
            ):
                return "change_shipping_address"
            pending = None
        if pending:
            gives = bool(
                parse.slots.get("order_id")
                or parse.slots.get("email")
                or find_order_number(text)
                or EMAIL.search(text)
            )
            if gives and (parse.intent not in ORDER_INTENTS or only_details(text)):
                return pending["intent"]
            if parse.intent in ORDER_INTENTS and (confident or gives):
                return parse.intent
            return None
        if parse.intent in ORDER_INTENTS and confident:
            return parse.intent
        return None

    def answer(
        self, parse: Parse, message: str, session: SessionState, intent: str
    ) -> OrderOutcome:
        """Collect the order number and e-mail, check them against the order, then act."""
        texts, store = self.texts, self.settings.store_name
        pending = session.pending or {}
        slots = dict(parse.slots)
        if pending.get("awaiting") == "address":
            order_id, email = pending.get("order_id"), session.verified_email
        else:
            order_id = slots.get("order_id") or find_order_number(message)
            order_id = order_id or pending.get("order_id") or session.current_order
            email = slots.get("email") or pending.get("email") or session.verified_email
        if order_id:
            slots["order_id"] = order_id
        parse = Parse(intent, slots, parse.confidence, parse.raw)
        if not order_id or not email:
            asked = {"intent": intent, "order_id": order_id, "email": email}
            reply = render(texts["ask_order_id" if not order_id else "ask_email"], store=store)
            context = {"pending": {k: v for k, v in asked.items() if v}}
            return OrderOutcome("order_ask", reply, parse, context=context)
        order = self.orders.find(order_id, email)
        if order is None:
            reply = render(texts["not_found"], store=store)
            return OrderOutcome(
                "order_not_found", reply, parse, context={"pending": {"intent": intent}}
            )
        verified = {"pending": None, "verified_email": order.email, "current_order": order.id}
        # Only a message that answers "what's the new address?" is taken as the address: the
        # request itself ("... of order 12345678 to 9 Elm Lane, Austin") holds other words.
        address = message if pending.get("awaiting") == "address" else None
        outcome = self._act(intent, order, address)
        outcome.parse, outcome.context = parse, {**verified, **outcome.context}
        return outcome

    def _act(self, intent: str, order: Order, address: str | None) -> OrderOutcome:
        """Do what a verified order request asks; the reply and the order as it now is."""
        texts, orders, store = self.texts, self.orders, self.settings.store_name
        if intent == "track_order":
            key, section = order.status, texts["track_order"]
        elif intent == "cancel_order":
            result = orders.cancel(order.id)
            key, section, order = result.outcome, texts["cancel_order"], result.order
        elif intent == "change_order":
            key, section = order.status, texts["change_order"]
        elif intent == "change_shipping_address":
            section = texts["change_shipping_address"]
            if order.status == "processing" and address:
                try:
                    result = orders.change_address(order.id, address)
                except OrderError:
                    result = None
                if result is not None:
                    key, order = result.outcome, result.order
                    return self._shown(render(section[key], **order_values(order, store)), order)
            if order.status == "processing":
                awaiting = {"intent": intent, "order_id": order.id, "awaiting": "address"}
                reply = render(texts["ask_address"], **order_values(order, store))
                return OrderOutcome(
                    "order_ask", reply, Parse(intent), order, context={"pending": awaiting}
                )
            key = "cancelled" if order.status == "cancelled" else "already_shipped"
        elif intent == "get_refund":
            result = orders.request_refund(order.id)
            key, section, order = result.outcome, texts["get_refund"], result.order
        elif intent == "track_refund":
            section = texts["track_refund"]
            key = "cancelled" if order.status == "cancelled" else order.refund_status
        else:  # check_invoice, get_invoice
            return self._shown(render(texts["invoice"], **order_values(order, store)), order)
        return self._shown(render(section[key], **order_values(order, store)), order)

    @staticmethod
    def _shown(reply: str, order: Order) -> OrderOutcome:
        return OrderOutcome("order", reply, Parse("track_order"), order)
