"""Order support in the chat: the order number and e-mail are collected, checked against the
order store, and the request is carried out and answered from `prompts/orders.toml`.

Orders (track, cancel, change, change the address, refund, refund status, invoice) are
answered from the order store with the templates of `prompts/orders.toml`, never by the LM.
An order is shown only to a session that has given its number and the e-mail on it; an
unknown number and a wrong e-mail get the same reply. A request missing either waits in
the session, so "it's 12345678" on the next turn completes it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.grounding import money
from bot.intent_parser import Parse
from bot.intent_schema import EMAIL, HANDOFF_INTENTS
from bot.orders import Order, OrderError, OrderStore, find_order_number, iso_date
from bot.prompts import prompt_table, render
from bot.sessions import SessionState, SessionStore
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.dialogue import Turn

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
    """The variables an order reply template may use, from the order record."""
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
        "carrier": order.carrier or "the carrier",
        "tracking": order.tracking_number or "not yet assigned",
        "refund_status": order.refund_status,
    }


class OrderDesk:
    """Answers a session's order requests; the dialogue hands it the turns about orders."""

    def __init__(self, settings: Settings, orders: OrderStore, sessions: SessionStore) -> None:
        self.settings = settings
        self.orders = orders
        self.sessions = sessions
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

    def answer(self, turn: Turn, session: SessionState, intent: str) -> None:
        """Collect the order number and e-mail, check them against the order, then act."""
        texts, store = self.texts, self.settings.store_name
        pending = session.pending or {}
        slots = dict(turn.parse.slots)
        if pending.get("awaiting") == "address":
            order_id, email = pending.get("order_id"), session.verified_email
        else:
            order_id = slots.get("order_id") or find_order_number(turn.message)
            order_id = order_id or pending.get("order_id") or session.current_order
            email = slots.get("email") or pending.get("email") or session.verified_email
        if order_id:
            slots["order_id"] = order_id
        turn.parse = Parse(intent, slots, turn.parse.confidence, turn.parse.raw)
        save = self.sessions.save_order_context
        if not order_id or not email:
            turn.route = "order_ask"
            asked = {"intent": intent, "order_id": order_id, "email": email}
            save(turn.session_id, pending={k: v for k, v in asked.items() if v})
            turn.fixed_reply = render(
                texts["ask_order_id" if not order_id else "ask_email"], store=store
            )
            return
        order = self.orders.find(order_id, email)
        if order is None:
            turn.route = "order_not_found"
            save(turn.session_id, pending={"intent": intent})
            turn.fixed_reply = render(texts["not_found"], store=store)
            return
        save(turn.session_id, pending=None, verified_email=order.email, current_order=order.id)
        turn.route = "order"
        # Only a message that answers "what's the new address?" is taken as the address: the
        # request itself ("... of order 12345678 to 9 Elm Lane, Austin") holds other words.
        address = turn.message if pending.get("awaiting") == "address" else None
        turn.fixed_reply, turn.order = self._act(turn, intent, order, address)

    def _act(self, turn: Turn, intent: str, order: Order, address: str | None) -> tuple[str, Order]:
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
                    return render(section[key], **order_values(order, store)), order
            if order.status == "processing":
                turn.route = "order_ask"
                self.sessions.save_order_context(
                    turn.session_id,
                    pending={"intent": intent, "order_id": order.id, "awaiting": "address"},
                )
                return render(texts["ask_address"], **order_values(order, store)), order
            key = "cancelled" if order.status == "cancelled" else "already_shipped"
        elif intent == "get_refund":
            result = orders.request_refund(order.id)
            key, section, order = result.outcome, texts["get_refund"], result.order
        elif intent == "track_refund":
            section = texts["track_refund"]
            key = "cancelled" if order.status == "cancelled" else order.refund_status
        else:  # check_invoice, get_invoice
            return render(texts["invoice"], **order_values(order, store)), order
        return render(section[key], **order_values(order, store)), order
