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

Order requests go to `bot.order_desk.OrderDesk`, which answers them from the order store,
never with the LM, and only to a session that has proved the order's e-mail.

A person takes the conversation over (`handoff`) when the shopper asks for one, after
`Settings.handoff_after_failures` turns in a row the bot could not serve, or when an angry
message is not about shopping (see `sounds_angry`); from then on the bot stays silent in
that conversation (route "handed_off", empty reply) until `Assistant.release`. Only turns
with something to read count as failures: empty or emoji-only messages count for nothing.

A session belongs to the caller that made it (`owner`, see `bot.access`) and to the first
shopper id that uses it; a turn from anyone else raises UnknownSession, the same error as
for a session that does not exist. Card numbers are removed from a message before anything
else sees it, and an e-mail address given for an order check is kept only where that check
needs it (the session's order context): stored turns and the reply's slots never hold it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.access import OPEN_OWNER
from bot.errors import ShopbotError
from bot.generation import LMPass
from bot.grounding import (
    MAX_DESCRIPTION_CHARS,
    MAX_TRAIT_CHARS,
    money,
    plain_text,
    policy_quote,
    shown_title,
)
from bot.intent_parser import IntentParser, Parse, SlotVocabulary, clean_message, has_words
from bot.intent_schema import (
    CONVERSATION_INTENTS,
    CUSTOMER_SERVICE_INTENTS,
    HANDOFF_INTENTS,
    SHOPPING_INTENTS,
    merge_slots,
)
from bot.order_desk import ORDER_INTENTS, OrderDesk
from bot.orders import Order
from bot.prompts import canned_replies, prompt_table, render
from bot.redact import redact_email, redact_payment
from bot.replies import ReplyWriter, product_kind
from bot.sessions import SessionState, SessionStore
from bot.settings import Settings
from bot.shop import Shop
from retrieval.filters import ProductFilters
from retrieval.ranking import RankedProduct, RankRequest

log = logging.getLogger("shopbot.dialogue")

ORDER_ROUTES = ("order", "order_ask", "order_not_found")
# Turns the bot could not serve; this many in a row hand the conversation to a person.
FAILED_ROUTES = ("clarify", "out_of_scope", "order_not_found")
ANGRY_WORDS = re.compile(
    r"\b(ridiculous|furious|unacceptable|outrageous|outraged|angry|terrible|worst|scam|"
    r"disgusting|useless|pathetic|awful|horrible|fed up|sick of|lawyer|rip[- ]?off)\b",
    re.I,
)
MAX_FOLLOW_UPS = 3
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


class UnknownSession(ShopbotError):
    """No session of this caller (and shopper) has this id (REST: 404). A session made by
    another caller gets the same answer as one that does not exist."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id


def new_session_id(prefix: str = "s-") -> str:
    """A session id the server issues: 144 random bits, never derived from content."""
    return prefix + secrets.token_urlsafe(18)


def without_email(slots: dict[str, Any]) -> dict[str, Any]:
    """Slots as stored and shown: the order check's e-mail stays out of both."""
    return {name: value for name, value in slots.items() if name != "email"}


SURE_SMALL_TALK = 0.9  # a greeting, thanks or goodbye parsed this sure is never searched


def catalog_match(shop: Shop, text: str) -> float:
    """How close the message is to its nearest product (cosine of the dense recall)."""
    hits = shop.catalog.search(text, k=1, system="dense")
    return (hits[0].dense_score or 0.0) if hits else 0.0


def searched_anyway(parse: Parse, match: float, settings: Settings) -> bool:
    """Whether a message the parser calls out of scope, or is unsure of, is a product search
    after all: its nearest product is at least `settings.shopping_match` similar. Small talk
    counts only when the parser is not sure of it either: after a search it has called "a
    gift for a coffee lover" a greeting (0.76 sure), while "thank you!" is 0.99 sure and may
    still sit near 0.4 on a small catalog."""
    unsure = parse.confidence < settings.parse_confidence
    if parse.intent in SHOPPING_INTENTS or parse.intent in HANDOFF_INTENTS:
        return False
    small_talk = parse.intent in CONVERSATION_INTENTS and parse.confidence < SURE_SMALL_TALK
    rejected = parse.intent == "out_of_scope" or small_talk or unsure
    return rejected and match >= settings.shopping_match


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
    order: Order | None = None  # the order shown: only ever one this session has proved
    follow_ups: list[str] = field(default_factory=list)
    handoff_reason: str | None = None  # asked, angry or failures
    done: bool = False

    @property
    def handoff(self) -> bool:
        return self.route in ("handoff", "handed_off")

    def stream(self, ticks: bool = False) -> Iterator[str | LMPass]:
        """The reply, a checked sentence at a time; the turn is logged once it is complete.
        A conversation a person has taken over yields nothing. With `ticks`, "" or the LM's
        next pass (an `LMPass`, to run in a batch) is yielded whenever the LM has written
        more without finishing a sentence."""
        started = time.perf_counter()
        pieces = []
        if self.fixed_reply is not None:
            pieces.append(self.fixed_reply)
            if self.fixed_reply:
                yield self.fixed_reply
        else:
            writer = self.assistant.writer
            shown: list[Any] = [item.product for item in self.products]
            if self.positions:
                shown = [None] * max(self.positions)
                for position, item in zip(self.positions, self.products, strict=True):
                    shown[position - 1] = item.product
            lead = None
            if self.route == "search" and self.products and not self.detailed:
                lead = render(self.assistant.texts["search_lead"], thing=product_kind(shown))
            for piece in writer.stream(
                self.message,
                shown,
                self.docs,
                self.detailed,
                removed=self.removed,
                lead=lead,
                ticks=ticks,
            ):
                if isinstance(piece, str):
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


def sounds_angry(text: str) -> int:
    """How many signs of anger a message shows (0 to 3): angry words ("ridiculous",
    "unacceptable", "worst", ...), shouting (most letters upper case, at least 3 words of
    3+ letters), and "!!". Deliberately simple: a complaint with one sign, or any
    non-shopping message with two, goes to a person rather than the bot."""
    letters = [c for c in text if c.isalpha()]
    words = re.findall(r"[A-Za-z]{3,}", text)
    shouting = (
        len(words) >= 3
        and len(letters) >= 10
        and sum(c.isupper() for c in letters) >= 0.7 * len(letters)
    )
    return int(bool(ANGRY_WORDS.search(text))) + int(shouting) + int("!!" in text)


def is_angry(text: str, intent: str) -> bool:
    if intent in SHOPPING_INTENTS:  # "RED SHOES!!!" is enthusiasm
        return False
    signs = sounds_angry(text)
    return signs >= 1 if intent == "complaint" else signs >= 2


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
        self.order_desk = OrderDesk(settings, shop.orders, sessions)
        self.follow_up_texts = prompt_table("follow_ups.toml")

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

    def warm_up(self) -> None:
        """Run a parse and a search once, logging nothing: the embedding model, the indexes
        and the parser's prompt cache are ready before the first shopper's turn."""
        self.parser.parse("hello, do you have running shoes?")
        self.shop.catalog.recommend("running shoes", 1, ProductFilters(in_stock=True))

    def close(self) -> None:
        self.sessions.close()

    def release(self, session_id: str) -> bool:
        """Give a handed-over conversation back to the bot; True when it was handed over."""
        return self.sessions.release(session_id)

    def respond(
        self,
        message: Any,
        session_id: str | None = None,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> Turn:
        """A whole turn, reply written: `start_turn(...).run()`."""
        return self.start_turn(message, session_id, shopper_id, owner).run()

    def start_turn(
        self,
        message: Any,
        session_id: str | None = None,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> Turn:
        """Parse and route a message and fetch what the reply needs; the reply is written by
        the returned Turn's `stream()` or `run()`. Order actions (a cancellation, a new
        address) take effect here. `owner` is the caller (a key, a page visitor; in-process
        callers such as the CLI are the open local owner). Raises UnknownSession when the
        session was made by another owner or belongs to a shopper other than `shopper_id`."""
        session_id = session_id or new_session_id()
        if not self.sessions.open(session_id, owner, shopper_id):
            raise UnknownSession(session_id)
        text = redact_payment(clean_message(message))
        session = self.sessions.state(session_id)
        started = time.perf_counter()
        if session.handed_off:
            # A person answers now; the message is logged for them, the bot says nothing.
            parse = Parse("contact_human_agent", {}, 0.0)
            turn = Turn(self, session_id, shopper_id, text, parse, "handed_off")
            turn.fixed_reply = ""
            return turn
        if not has_words(text):
            turn = Turn(self, session_id, shopper_id, text, Parse("out_of_scope", {}, 0.0), "")
            turn.route, turn.fixed_reply = "empty", self.texts["empty"]
        else:
            parse = self.parser.parse(text, self._context(session))
            turn = Turn(self, session_id, shopper_id, text, parse, parse.intent)
            turn.timings["parse_ms"] = parse.elapsed_ms
            self._route(turn, session)
        if turn.route in FAILED_ROUTES and session.failures + 1 >= (
            self.settings.handoff_after_failures
        ):
            turn.route, turn.fixed_reply = "handoff", self.texts["handoff_failures"]
            turn.handoff_reason = "failures"
        if turn.route == "handoff":
            self.sessions.hand_off(session_id, turn.handoff_reason or "asked")
        turn.follow_ups = self._follow_ups(turn)
        turn.timings["route_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return turn

    def _matches_catalog(self, turn: Turn) -> bool:
        """`searched_anyway`, with the catalog searched only for a parse it could rescue."""
        if not searched_anyway(turn.parse, 1.0, self.settings):
            return False
        match = catalog_match(self.shop, turn.message)
        turn.timings["catalog_match"] = round(match, 3)
        return searched_anyway(turn.parse, match, self.settings)

    def _context(self, session: SessionState) -> dict[str, Any] | None:
        """The conversation so far as the parser sees it: the order request under way, if
        the last turn was about an order, else the product search."""
        if session.pending:
            pending = session.pending
            slots = {"order_id": pending["order_id"]} if "order_id" in pending else {}
            return {"intent": pending["intent"], "slots": slots}
        if session.last_route in ORDER_ROUTES and session.last_intent in ORDER_INTENTS:
            slots = {"order_id": session.current_order} if session.current_order else {}
            return {"intent": session.last_intent, "slots": slots}
        return session.previous()

    def _route(self, turn: Turn, session: SessionState) -> None:
        text, intent = turn.message, turn.parse.intent
        confident = turn.parse.confidence >= self.settings.parse_confidence
        order_intent = self.order_desk.request(turn.parse, turn.message, session)
        if session.pending and order_intent is None:
            self.sessions.save_order_context(turn.session_id, pending=None)
        if is_angry(text, intent):
            turn.route, turn.fixed_reply = "handoff", self.texts["handoff_angry"]
            turn.handoff_reason = "angry"
        elif order_intent is not None:
            self.order_desk.answer(turn, session, order_intent)
        elif self._matches_catalog(turn):
            # "something to keep me dry on my bike commute": the parser, trained on named
            # products, misses requests phrased as a need (and after a search may even call
            # "a gift for a coffee lover" a greeting); the catalog recognises them.
            turn.parse = dataclasses.replace(
                turn.parse, intent="search_products", slots={"query": text}
            )
            self._search(turn, {})
        elif not confident and intent not in SHOPPING_INTENTS:
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

    def _follow_ups(self, turn: Turn) -> list[str]:
        """Suggested next messages for what this turn did (`prompts/follow_ups.toml`)."""
        key = turn.route
        if turn.route == "search" and not turn.products:
            key = "search_empty"
        elif turn.route == "details" and turn.parse.intent == "compare_products":
            key = "compare"
        elif turn.route == "order" and turn.order is not None:
            key = f"order_{turn.order.status}"
        return list(self.follow_up_texts.get(key, []))[:MAX_FOLLOW_UPS]

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
            redact_email(turn.message),
            intent,
            without_email(turn.parse.slots),
            without_email(state),
            shown,
            turn.reply,
            turn.route,
            turn.shopper_id,
        )
        if turn.route not in ("handed_off", "empty"):  # nothing to read: counts for nothing
            self.sessions.count_failure(turn.session_id, turn.route in FAILED_ROUTES)
