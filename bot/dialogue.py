"""One chat turn, end to end: parse, route, retrieve, rank, reply, log.

    assistant = Assistant.open(settings)
    turn = assistant.start_turn("red running shoes under $80", session_id="s1")
    for piece in turn.stream():     # checked reply text, a sentence at a time
        print(piece, end="")
    turn.to_dict()                  # reply, intent, slots, products (id, title, price, score)

Routing by intent: product intents search the catalog under the slot filters (slots carry
over from earlier turns) and rank for this shopper; "the second one" resolves against what
was shown last; customer-service intents answer from the policy documents; a request for a
person hands over; greetings and out-of-scope requests get fixed replies. A parse below the
confidence threshold asks the shopper to clarify, unless it reads as a product search.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.intent_parser import IntentParser, Parse, SlotVocabulary, clean_message, has_words
from bot.intent_schema import CUSTOMER_SERVICE_INTENTS, SHOPPING_INTENTS, merge_slots
from bot.prompts import canned_replies
from bot.replies import ReplyWriter
from bot.sessions import SessionStore
from bot.settings import Settings
from bot.shop import Shop
from retrieval.filters import ProductFilters
from retrieval.ranking import RankedProduct, RankRequest

log = logging.getLogger("shopbot.dialogue")

HANDOFF_INTENTS = ("contact_human_agent",)
FILTER_SLOTS = ("category", "brand", "colour", "size", "price_min", "price_max")
SHOWN_PRODUCTS = 5
RECALLED = 20
FIT = 0.8  # products shown are at least this similar to the request, relative to the best
SORT_KEYS = {
    "cheapest": lambda p: (p.price is None, p.price or 0.0),
    "most_expensive": lambda p: (p.price is None, -(p.price or 0.0)),
    "best_rated": lambda p: (-(p.rating or 0.0), -(p.review_count or 0)),
    "most_popular": lambda p: (-(p.review_count or 0), -(p.rating or 0.0)),
}


@dataclass
class Turn:
    """A chat turn once parsed and routed; `stream()` writes and records its reply."""

    assistant: Assistant
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
    done: bool = False

    @property
    def handoff(self) -> bool:
        return self.route == "handoff"

    def stream(self) -> Iterator[str]:
        """The reply, a checked sentence at a time; the turn is logged once it is complete."""
        started = time.perf_counter()
        pieces = []
        if self.fixed_reply is not None:
            pieces.append(self.fixed_reply)
            yield self.fixed_reply
        else:
            writer = self.assistant.writer
            shown: list[Any] = [item.product for item in self.products]
            if self.positions:
                shown = [None] * max(self.positions)
                for position, item in zip(self.positions, self.products, strict=True):
                    shown[position - 1] = item.product
            for piece in writer.stream(
                self.message, shown, self.docs, self.detailed, removed=self.removed
            ):
                pieces.append(piece)
                yield piece
            self.timings.update(getattr(writer.chat_model, "last_stats", {}) or {})
        self.reply = "".join(pieces).strip()
        self.timings["reply_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self.assistant.finish(self)
        self.done = True

    def run(self) -> Turn:
        for _ in self.stream():
            pass
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "reply": self.reply,
            "intent": self.parse.intent,
            "slots": self.state if self.parse.intent in SHOPPING_INTENTS else self.parse.slots,
            "confidence": self.parse.confidence,
            "route": self.route,
            "handoff": self.handoff,
            "products": [
                {
                    "id": item.product.id,
                    "title": item.product.title,
                    "price": item.product.price,
                    "score": round(item.score, 4),
                }
                for item in self.products
            ],
            "sources": [doc.id for doc in self.docs],
            "removed": self.removed,
            "timings_ms": self.timings,
        }


class Assistant:
    """The shop's chat assistant: one LM, the catalog, the sessions, opened once."""

    def __init__(
        self,
        settings: Settings,
        shop: Shop,
        parser: IntentParser,
        writer: ReplyWriter,
        sessions: SessionStore,
    ) -> None:
        self.settings = settings
        self.shop = shop
        self.parser = parser
        self.writer = writer
        self.sessions = sessions
        self.texts = {
            key: value.replace("{store}", settings.store_name)
            for key, value in canned_replies().items()
        }

    @classmethod
    def open(cls, settings: Settings, shop: Shop | None = None, lm: Any = None) -> Assistant:
        """Load the LM (once) and open the shop, the sessions and the reply writer."""
        from bot.chat_model import LocalChatModel, remote_chat_model
        from bot.lm import load_lm

        shop = shop or Shop(settings)
        if lm is None:
            lm = load_lm(
                settings.lm_model,
                data_dir=settings.data_dir,
                adapter=settings.adapter_path,
                device=settings.device,
                dtype=settings.lm_dtype,
            )
        vocabulary = SlotVocabulary(shop.catalog.records.slot_values())
        if settings.lm_url:
            chat_model = remote_chat_model(
                settings.lm_url,
                settings.lm_api_model,
                settings.lm_api_key,
                settings.reply_max_tokens,
            )
        else:
            chat_model = LocalChatModel(lm=lm, max_new_tokens=settings.reply_max_tokens)
        writer = ReplyWriter(chat_model, settings.store_name, vocabulary.values.get("brand", ()))
        sessions = SessionStore(Path(settings.data_dir) / "sessions.sqlite")
        return cls(settings, shop, IntentParser(lm, vocabulary), writer, sessions)

    def close(self) -> None:
        self.sessions.close()

    def respond(self, message: Any, session_id: str | None = None, shopper_id=None) -> Turn:
        """A whole turn, reply written: `start_turn(...).run()`."""
        return self.start_turn(message, session_id, shopper_id).run()

    def start_turn(
        self, message: Any, session_id: str | None = None, shopper_id: str | None = None
    ) -> Turn:
        """Parse and route a message and fetch what the reply needs; the reply is written by
        the returned Turn's `stream()` or `run()`."""
        session_id = session_id or uuid.uuid4().hex
        text = clean_message(message)
        session = self.sessions.state(session_id)
        started = time.perf_counter()
        if not has_words(text):
            parse = Parse("out_of_scope", {}, 0.0)
            turn = Turn(self, session_id, shopper_id, text, parse, "empty")
            turn.fixed_reply = self.texts["empty"]
            return turn
        parse = self.parser.parse(text, session.previous())
        turn = Turn(self, session_id, shopper_id, text, parse, parse.intent)
        turn.timings["parse_ms"] = parse.elapsed_ms
        intent = parse.intent
        confident = parse.confidence >= self.settings.parse_confidence
        if not confident and intent not in SHOPPING_INTENTS:
            turn.route, turn.fixed_reply = "clarify", self.texts["clarify"]
        elif intent == "search_products" or (not confident and intent in SHOPPING_INTENTS):
            self._search(turn, session.slots if session.intent else {})
        elif intent in ("product_details", "compare_products"):
            self._about_shown(turn, session)
        elif intent in HANDOFF_INTENTS:
            turn.route, turn.fixed_reply = "handoff", self.texts["handoff"]
        elif intent in CUSTOMER_SERVICE_INTENTS:
            turn.route = "policy"
            turn.docs = [hit.doc for hit in self.shop.catalog.policies.search(text, k=2)]
        else:
            turn.fixed_reply = self.texts.get(intent, self.texts["out_of_scope"])
        turn.timings["route_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return turn

    def _search(self, turn: Turn, carried: dict[str, Any]) -> None:
        turn.route = "search"
        state = merge_slots(carried, turn.parse.slots)
        turn.state = state
        query = " ".join(
            str(state[name]) for name in ("colour", "material", "query") if state.get(name)
        )
        query = query or str(state.get("category") or turn.message)
        sort = state.get("sort")
        wanted = {name: state.get(name) for name in FILTER_SLOTS}
        filters = ProductFilters(**wanted, in_stock=True)
        request = RankRequest(**wanted)
        ranked = self.shop.recommend(
            query,
            RECALLED,
            filters,
            request=request,
            shopper_id=turn.shopper_id,
            session_id=turn.session_id,
        )
        if ranked:
            # Exploration may lift a product that merely shares a colour with the request, and
            # "cheapest" means the cheapest of what fits: keep what is close to the best match.
            best = max(item.features.get("semantic", 0.0) for item in ranked)
            ranked = [i for i in ranked if i.features.get("semantic", 0.0) >= FIT * best]
        if sort in SORT_KEYS:
            ranked = sorted(ranked, key=lambda item: SORT_KEYS[sort](item.product))
        turn.products = ranked[:SHOWN_PRODUCTS]

    def _about_shown(self, turn: Turn, session: Any) -> None:
        refs = turn.parse.slots.get("product_refs") or []
        turn.state = merge_slots(session.slots, {})
        if not refs:
            if turn.parse.slots.get("query"):
                self._search(turn, session.slots)
                turn.products, turn.detailed = turn.products[:1], True
                return
            refs = [1, 2] if turn.parse.intent == "compare_products" else [1]
        if not session.shown:
            turn.route, turn.fixed_reply = "clarify", self.texts["nothing_shown"]
            return
        if any(ref > len(session.shown) for ref in refs):
            turn.route = "clarify"
            turn.fixed_reply = self.texts["unknown_reference"].replace(
                "{count}", str(len(session.shown))
            )
            return
        ids = [session.shown[ref - 1] for ref in refs]
        products = self.shop.catalog.records.get_many(ids)
        turn.route = "details"
        turn.detailed = turn.parse.intent == "product_details"
        found = [(ref, pid) for ref, pid in zip(refs, ids, strict=True) if pid in products]
        turn.positions = [ref for ref, _ in found]
        turn.products = [RankedProduct(products[pid], 1.0, {}, []) for _, pid in found]

    def finish(self, turn: Turn) -> None:
        """Log a completed turn; the session's next turn starts from its state."""
        shown = [item.product.id for item in turn.products]
        if turn.route == "details":
            shown = self.sessions.state(turn.session_id).shown  # keep the list they refer to
        state = turn.state if turn.route in ("search", "details") else {}
        intent = turn.parse.intent if turn.route != "empty" else "out_of_scope"
        self.sessions.record_turn(
            turn.session_id,
            turn.message,
            intent,
            turn.parse.slots,
            state,
            shown,
            turn.reply,
            turn.route,
            turn.shopper_id,
        )
