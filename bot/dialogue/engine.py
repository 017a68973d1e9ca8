"""One chat turn, end to end: load the session, decide, act, write the reply, save once.

    assistant = Assistant.open(settings)
    turn = assistant.start_turn("red running shoes under $80", session_id="s1")
    for piece in assistant.stream_reply(turn):   # checked reply text, a sentence at a time
        print(piece, end="")
    turn.to_dict()                               # reply, intent, slots, products, ...

Routing by intent: product intents search the catalog under the slot filters (slots carry
over from earlier turns) and rank for this shopper; "the second one" resolves against what
was shown last (`bot.dialogue.products`); customer-service intents answer from the policy
documents; order requests go to `bot.dialogue.order_desk`, which answers from the order
store, never with the LM, and only to a session that has proved the order's e-mail; a
request for a person hands over; greetings and out-of-scope requests get fixed replies. An
unsure parse asks to clarify, unless it reads as a product search (where the LM refuses or
is unsure, `bot.nlu.second_opinion` may name the service intent meant). What real chats
are full of is read from the words (`bot.dialogue.signals`) whatever the parser says:
reactions get what can come next, "how much is it?" is about the product shown, "anything
else?" and "too expensive" search again without what was shown, "I'll buy it" gets how to
order, and a discount question gets the policy's words.

A person takes the conversation over (`handoff`) when the shopper asks for one, after
`Settings.handoff_after_failures` turns in a row the bot could not serve, or when an angry
message is not about shopping (`bot.dialogue.mood`); from then on the bot stays silent in
that conversation (route "handed_off", empty reply) until `Assistant.release`. Only turns
with something to read count as failures: empty or emoji-only messages count for nothing.

A session belongs to the caller that made it (`owner`, see `bot.channels.access`) and to
the first shopper id that uses it; a turn from anyone else raises UnknownSession, the same
error as for a session that does not exist. Card numbers are removed from a message before
anything else sees it, and an e-mail address given for an order check is kept only where
that check needs it (the session's order context): stored turns and the reply's slots never
hold it.

The turn is data (`bot.dialogue.turn.Turn`): routing fills it in, and what it changes in
the session is saved with it, in one transaction, once its reply is complete. Callers that
run turns concurrently serialise the turns of one session (`bot.dialogue.service`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bot.dialogue.comparisons import attribute_reply, compare_reply, features_reply
from bot.dialogue.mood import is_angry
from bot.dialogue.order_desk import ORDER_INTENTS, OrderDesk
from bot.dialogue.products import (
    Found,
    ProductDesk,
    named_colour,
    named_features,
    named_type,
    refs_said,
    search_notes,
    search_phrase,
    searched_anyway,
)
from bot.dialogue.service_answer import PolicyDesk
from bot.dialogue.signals import (
    acts_on_order,
    asks_for_discount,
    asks_for_person,
    asks_rule_of_own_order,
    asks_to_contact,
    asks_what_bot_does,
    pleasantry,
    points_at_shown,
    reacts_only,
    substantive,
    too_expensive,
    wants_bot_back,
    wants_more,
    wants_to_buy_shown,
)
from bot.dialogue.turn import Turn, without_email
from bot.dialogue.writer import ReplyWriter, product_kind
from bot.nlu.parser import IntentParser, Parse, SlotVocabulary, clean_message, has_words
from bot.nlu.schema import (
    CONVERSATION_INTENTS,
    CUSTOMER_SERVICE_INTENTS,
    HANDOFF_INTENTS,
    SHOPPING_INTENTS,
)
from bot.nlu.second_opinion import SecondOpinion
from bot.prompts import prompt_table, render
from bot.redact import redact_email, redact_payment
from bot.settings import Settings
from bot.shop import Shop
from bot.stores.sessions import (
    OPEN_OWNER,
    SessionState,
    SessionStore,
    TurnRecord,
    UnknownSession,
    new_session_id,
)
from retrieval.filters import ProductFilters

log = logging.getLogger("shopbot.dialogue")

ORDER_ROUTES = ("order", "order_ask", "order_not_found")
# Turns the bot could not serve; this many in a row hand the conversation to a person.
FAILED_ROUTES = ("clarify", "out_of_scope", "order_not_found")
COURTESIES = tuple(intent for intent in CONVERSATION_INTENTS if intent != "out_of_scope")
MAX_FOLLOW_UPS = 3
NEAREST_ONLY = 0.35  # a best match less similar than this is no match: the lead says so


class Assistant:
    """The shop's chat assistant: one LM, the catalog, the sessions, opened once."""

    def __init__(
        self,
        settings: Settings,
        shop: Shop,
        parser: IntentParser,
        writer: ReplyWriter,
        sessions: SessionStore,
        scheduler: Any = None,
    ) -> None:
        self.settings = settings
        self.scheduler = scheduler  # the LM's `PassScheduler`, closed with the assistant
        self.shop = shop
        self.parser = parser
        self.writer = writer
        self.sessions = sessions
        self.texts = {
            key: value.replace("{store}", settings.store_name)
            for key, value in prompt_table("canned_replies.toml").items()
        }
        self.order_desk = OrderDesk(settings, shop.orders)
        self.product_desk = ProductDesk(shop, self.texts, parser.vocabulary.values)
        self.policy_desk = PolicyDesk(settings, shop)
        self.follow_up_texts = prompt_table("follow_ups.toml")

    @classmethod
    def open(
        cls, settings: Settings, shop: Shop | None = None, lm: Any = None, scheduler: Any = None
    ) -> Assistant:
        """Load the LM (once) and open the shop, the sessions and the reply writer. With a
        `scheduler` (`bot.lm.scheduler.PassScheduler`, for turns on several threads), every
        LM pass runs on its thread; without one, on the caller's."""
        from bot.lm.chat_model import LocalChatModel, remote_chat_model
        from bot.lm.loading import load_lm, load_tokenizer
        from bot.lm.server import parse_server

        shop = shop or Shop(settings)
        server = parse_server(settings)
        if lm is None and server is not None:  # parse and replies on lm_url: no weights here
            lm = load_tokenizer(settings.lm_model, data_dir=settings.data_dir)
        elif lm is None:
            lm = load_lm(
                settings.lm_model,
                data_dir=settings.data_dir,
                adapter=settings.adapter_path,
                device=settings.device,
                dtype=settings.lm_dtype,
            )
        vocabulary = SlotVocabulary(shop.slot_values())
        if settings.lm_url:
            chat_model = remote_chat_model(
                settings.lm_url,
                settings.lm_api_model,
                settings.lm_api_key,
                settings.reply_max_tokens,
            )
        else:
            chat_model = LocalChatModel(
                lm=lm, max_new_tokens=settings.reply_max_tokens, scheduler=scheduler
            )
        writer = ReplyWriter(
            chat_model,
            settings.store_name,
            vocabulary.values.get("brand", ()),
            _traits(vocabulary.values),
        )
        sessions = SessionStore(settings.sessions_path)
        second = SecondOpinion.open(settings, shop.catalog.embedder.embed_query)
        parser = IntentParser(
            lm, vocabulary, scheduler=scheduler, second_opinion=second, server=server
        )
        return cls(settings, shop, parser, writer, sessions, scheduler)

    def _follow_catalog(self) -> None:
        """After the catalog changed (an upload here or through another worker), its new
        brands, colours, features and product types are known from the next turn on."""
        values = self.shop.slot_values()
        if values is not self.parser.vocabulary.values:
            self.parser.vocabulary.values = self.product_desk.values = values
            self.writer.known_brands = sorted({b.lower() for b in values.get("brand", ())})
            self.writer.known_traits = sorted(_traits(values))

    def warm_up(self) -> None:
        """Run a parse and a search once, logging nothing: the embedding model, the indexes
        and the parser's prompt cache are ready before the first shopper's turn."""
        self.parser.parse("hello, do you have running shoes?")
        self.shop.recommend("running shoes", 1, ProductFilters(in_stock=True))

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
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
        """A whole turn, reply written and saved."""
        turn = self.start_turn(message, session_id, shopper_id, owner)
        for _ in self.stream_reply(turn):
            pass
        return turn

    # -- load and decide -------------------------------------------------------------------

    def start_turn(
        self,
        message: Any,
        session_id: str | None = None,
        shopper_id: str | None = None,
        owner: str = OPEN_OWNER,
    ) -> Turn:
        """Parse and route a message and fetch what the reply needs; `stream_reply` writes
        the reply and saves the turn. Order actions (a cancellation, a new address) take
        effect here. `owner` is the caller (a key, a page visitor; in-process callers such
        as the CLI are the open local owner). Raises UnknownSession when the session was
        made by another owner or belongs to a shopper other than `shopper_id`."""
        session_id = session_id or new_session_id()
        if not self.sessions.open(session_id, owner, shopper_id):
            raise UnknownSession(session_id)
        self._follow_catalog()
        text = redact_payment(clean_message(message))
        session = self.sessions.state(session_id)
        started = time.perf_counter()
        if session.handed_off:
            parse = Parse("contact_human_agent", {}, 0.0)
            if wants_bot_back(text):  # "no, keep helping me": the shopper takes the bot back
                back = self.texts["bot_back"]
                turn = Turn(session_id, shopper_id, text, parse, "bot_back", fixed_reply=back)
                turn.changes.take_back = True
                return turn
            # A person answers now; the message is logged for them, the bot says nothing.
            return Turn(session_id, shopper_id, text, parse, "handed_off", fixed_reply="")
        if not has_words(text):  # "", ":)", "?": an example to start with, later what can come next
            parse = Parse("out_of_scope", {}, 0.0)
            key = "acknowledge" if session.shown else "small_talk" if session.turns else "empty"
            turn = Turn(session_id, shopper_id, text, parse, "empty", fixed_reply=self.texts[key])
        else:
            parse = self.parser.parse(text, self._context(session))
            turn = Turn(session_id, shopper_id, text, parse, parse.intent)
            turn.timings["parse_ms"] = parse.elapsed_ms
            self._route(turn, session)
        # Only a substantive request the bot could not serve (or an order it could not find)
        # counts towards a handoff: "ok", "hmm", "the quantity" or an emoji count for
        # nothing, and do not reset the count either.
        failed = turn.route in FAILED_ROUTES and (
            substantive(text) or turn.route == "order_not_found"
        )
        if failed and session.failures + 1 >= self.settings.handoff_after_failures:
            turn.route, turn.fixed_reply = "handoff", self.texts["handoff_failures"]
            turn.handoff_reason = "failures"
        if turn.route == "handoff":
            turn.changes.hand_off = turn.handoff_reason or "asked"
        neutral = turn.route == "empty" or (turn.route == "small_talk" and reacts_only(text))
        if failed or (turn.route not in FAILED_ROUTES and not neutral):
            turn.changes.failed = failed
        turn.shown_before = list(session.shown)
        turn.follow_ups = self._follow_ups(turn)
        turn.timings["route_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return turn

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
        """Decide where the turn goes and fetch what its reply needs, in this order: anger,
        a rule asked about an order of theirs (the policies' answer, then the order offered),
        an order the shopper wants something done to (new or under way), a request for a
        person, a decision to buy what was shown (how to order), a discount or contact
        question (the policies), a question about the products shown, a request for other
        products than those shown, a mere reaction ("ok", "hmm"), a question the policies
        answer, a need the catalog recognises, an unsure parse, products pointed at when
        none were shown ("do those come in black?": what to look for is asked), a search, a
        service question, small talk.
        The parser's intent is a hint: the words and their closeness to the policies and
        the catalog overrule it where it was trained on other phrasing."""
        text, intent = turn.message, turn.parse.intent
        confident = turn.parse.confidence >= self.settings.parse_confidence
        order_intent = self.order_desk.request(turn.parse, turn.message, session)
        about_their_order = session.pending or session.last_route in ORDER_ROUTES
        if order_intent is not None and not about_their_order and not acts_on_order(text):
            order_intent = None  # "who pays for return shipping": a rule, not an order of theirs
        if session.pending and order_intent is None:
            turn.changes.order_context["pending"] = None  # the shopper moved on
        carried = session.slots if session.intent else {}
        catalog_match = self._catalog_match(turn)
        if is_angry(text, intent):
            turn.route, turn.fixed_reply = "handoff", self.texts["handoff_angry"]
            turn.handoff_reason = "angry"
        elif (
            order_intent is not None
            and (not about_their_order or session.pending)  # a rule asked instead of a number
            and asks_rule_of_own_order(text)
            and self._answers_from_policies(turn, session, catalog_match, always=True)
        ):  # "it showed up dec 2, can i still return it?": the rule, then the order offered
            turn.fixed_reply = f"{turn.fixed_reply} {self.texts['order_offer']}"
            turn.changes.order_context["pending"] = {"intent": order_intent}
        elif order_intent is not None:
            outcome = self.order_desk.answer(turn.parse, text, session, order_intent)
            turn.route, turn.fixed_reply, turn.parse = outcome.route, outcome.reply, outcome.parse
            turn.order = outcome.order
            turn.changes.order_context.update(outcome.context)
        elif intent in HANDOFF_INTENTS and asks_for_person(text):
            turn.route, turn.fixed_reply = "handoff", self.texts["handoff"]
        elif asks_what_bot_does(text):  # "what kind of stuff can you help me with"
            turn.route, turn.fixed_reply = "small_talk", self.texts["small_talk"]
        elif (polite := pleasantry(text)) and not (confident and intent in COURTESIES):
            # "Have a nice day", "I hope you're doing well!": a courtesy, never a refusal
            key = "small_talk" if polite == "greeting" and session.turns else polite
            turn.parse = dataclasses.replace(turn.parse, intent=polite, slots={})
            turn.route, turn.fixed_reply = polite, self.texts[key]
        elif session.shown and wants_to_buy_shown(text):  # "I'll buy it": how to, not an order
            self._how_to_buy(turn, session, catalog_match)
        elif (asks_for_discount(text) or asks_to_contact(text)) and self._answers_from_policies(
            turn, session, catalog_match, always=True
        ):  # "any discount if I buy both?": the policy's words, never a promise; "whats the
            # number to call you guys": the contact section, however far its words are
            pass
        elif (found := self._points_at_shown(turn, session)) is not None:
            self._take(turn, found)
        elif session.shown and (wants_more(text) or self._too_dear(turn)):
            self._take(turn, self._other_products(turn, session, carried))
        elif reacts_only(text) and not (confident and intent in ("greeting", "thanks")):
            # "ok", "hmm", "Oh cool", "are you there?": what can come next (a goodbye read
            # into "hmm" would end the conversation)
            key = "acknowledge" if session.shown else "small_talk"
            turn.route, turn.fixed_reply = "small_talk", self.texts[key]
        elif self._answers_from_policies(turn, session, catalog_match):
            pass
        elif self._matches_catalog(turn, catalog_match):
            # "something to keep me dry on my bike commute": the parser, trained on named
            # products, misses requests phrased as a need; the catalog recognises them.
            turn.parse = dataclasses.replace(
                turn.parse, intent="search_products", slots={"query": search_phrase(text)}
            )
            self._take(turn, self._search(turn, {}))
        elif not confident and intent not in SHOPPING_INTENTS:
            turn.route, turn.fixed_reply = "clarify", self.texts["clarify"]
        elif intent in SHOPPING_INTENTS and self._points_at_nothing(turn, session, carried):
            # "do those come in black?" when no product was shown: not a search for "black"
            turn.route, turn.fixed_reply = "clarify", self.texts["nothing_shown"]
        elif intent == "search_products" or (not confident and intent in SHOPPING_INTENTS):
            self._take(turn, self._search(turn, carried))
        elif intent in ("product_details", "compare_products"):
            found = self.product_desk.about_shown(
                turn.parse, text, session, turn.shopper_id, turn.session_id
            )
            self._take(turn, found)
        elif intent in HANDOFF_INTENTS:  # "how are you doing?", "I am a very messy person"
            turn.route, turn.fixed_reply = "small_talk", self.texts["small_talk"]
        elif intent in CUSTOMER_SERVICE_INTENTS:
            if not self._answers_from_policies(turn, session, catalog_match, always=True):
                turn.route, turn.fixed_reply = "policy", self.texts["no_policy_answer"]
        else:
            turn.fixed_reply = self.texts.get(intent, self.texts["out_of_scope"])
        if turn.route != "details" or not turn.products:
            return
        features = named_features(text, self.parser.vocabulary.values.get("feature", ()))
        shown = [item.product for item in turn.products]
        if len(shown) >= 2:  # computed, never the LM's
            turn.parse = dataclasses.replace(turn.parse, intent="compare_products")
            turn.fixed_reply = compare_reply(shown, text, features)
        elif features:  # "is it waterproof?": the record's features say, not the LM
            turn.fixed_reply = features_reply(shown[0], features)
        elif asked := attribute_reply(shown[0], text):
            turn.fixed_reply = asked  # "what sizes does it come in?": the record's sizes

    def _points_at_nothing(
        self, turn: Turn, session: SessionState, carried: dict[str, Any]
    ) -> bool:
        """Whether the message points at products shown ("white ones if u have them") when
        none were, and nothing it says or carries names what to look for."""
        if session.shown or not points_at_shown(turn.message):
            return False
        if any(carried.get(name) for name in ("query", "category", "brand")):
            return False  # a search that found nothing goes on
        if any(turn.parse.slots.get(name) for name in ("category", "brand")):
            return False
        return named_type(turn.message, self.parser.vocabulary.values.get("type", ())) is None

    def _points_at_shown(self, turn: Turn, session: SessionState) -> Found | None:
        """`ProductDesk.pointed_at`: the turn's parse becomes the request the words make,
        with the product numbers they say (`refs_said`)."""
        turn.parse = refs_said(turn.parse, turn.message, len(session.shown))
        asked = (turn.parse, turn.message, session, turn.shopper_id, turn.session_id)
        if (pointed := self.product_desk.pointed_at(*asked)) is None:
            return None
        turn.parse, found = pointed
        return found

    def _how_to_buy(
        self, turn: Turn, session: SessionState, catalog_match: Callable[[], float]
    ) -> None:
        """The shopper decided to buy what was shown: the chat cannot place orders, so the
        reply is the policies' answer to how to order (`buy_question`)."""
        question = self.texts["buy_question"]
        turn.parse = Parse("place_order", {}, turn.parse.confidence)
        answer = self.policy_desk.answer(
            question, turn.parse, session, catalog_match, turn.timings, always=True
        )
        turn.route, turn.fixed_reply = "policy", self.texts["buy_shown"]
        if answer is not None:
            turn.fixed_reply += " " + answer.text
            turn.docs = answer.docs

    @staticmethod
    def _too_dear(turn: Turn) -> bool:
        """ "TOO EXPENSIVE!" where the parser read no price wish (a "cheaper" it read as a
        sort stays its search)."""
        slots = turn.parse.slots
        return too_expensive(turn.message) and not ({"sort", "price_max"} & set(slots))

    def _other_products(self, turn: Turn, session: SessionState, carried: dict) -> Found:
        """ "Anything else?", "they look ugly", "too expensive!" after products were shown:
        the same search without the products shown in the last few product turns; when they
        were too dear, only cheaper ones than the cheapest shown, cheapest first. Filters the
        message names ("anything else in red?") join those in force. When none of what it
        finds is of the types shown, or it finds nothing, the reply says there are no more
        of those."""
        slots = {k: v for k, v in turn.parse.slots.items() if k not in ("query", "product_refs")}
        known = self.shop.products(session.shown)
        before = [known[pid] for pid in session.shown if pid in known]
        too_dear = self._too_dear(turn)
        prices = [p.price for p in before if p.price] if too_dear else []
        if too_dear:
            if prices and "price_max" not in slots:
                slots["price_max"] = min(prices)  # the cheapest shown is left out
            slots["sort"] = "cheapest"
        turn.parse = dataclasses.replace(turn.parse, intent="search_products", slots=slots)
        found = self._search(turn, carried, exclude=session.seen or session.shown)
        if prices:  # one at the same price as the cheapest shown is no cheaper
            cheapest = min(prices)
            found.products = [i for i in found.products if (i.product.price or 0.0) < cheapest]
        kind = product_kind(before)
        if not found.products and found.route == "search":  # every one of them was shown
            key = "search_cheaper_none" if too_dear else "search_ran_out_none"
            found.fixed_reply = render(self.texts[key], thing=kind)
            return found
        types = {(p.attributes or {}).get("type") for p in before} - {None}
        if kind != "options" and not any(
            (item.product.attributes or {}).get("type") in types for item in found.products
        ):
            found.ran_out = kind
        return found

    def _catalog_match(self, turn: Turn) -> Callable[[], float]:
        """The message's closeness to its nearest product: looked up once a turn, when
        first needed (the policy rule and the catalog rescue both weigh it)."""

        @functools.cache
        def match() -> float:
            value = self.shop.nearest_match(turn.message)
            turn.timings["catalog_match"] = round(value, 3)
            return value

        return match

    def _answers_from_policies(
        self,
        turn: Turn,
        session: SessionState,
        catalog_match: Callable[[], float],
        always: bool = False,
    ) -> bool:
        """`PolicyDesk.answer` for the turn; True when it answered."""
        answer = self.policy_desk.answer(
            turn.message, turn.parse, session, catalog_match, turn.timings, always
        )
        if answer is None:
            return False
        turn.route, turn.fixed_reply, turn.docs = "policy", answer.text, answer.docs
        return True

    def _matches_catalog(self, turn: Turn, catalog_match: Callable[[], float]) -> bool:
        """`searched_anyway`, with the catalog searched only for a parse it could rescue."""
        if not searched_anyway(turn.parse, 1.0, self.settings, turn.message):
            return False
        return searched_anyway(turn.parse, catalog_match(), self.settings, turn.message)

    def _search(self, turn: Turn, carried: dict[str, Any], exclude: Sequence[str] = ()) -> Found:
        """A product search for the turn, without the products `exclude` names. A colour the
        message names that the parser left in the query ("red dress for a wedding") becomes
        a filter, when it is the only catalog colour the message names."""
        colour = named_colour(turn.message, self.parser.vocabulary.values.get("colour", ()))
        if colour and "colour" not in turn.parse.slots:
            turn.parse = dataclasses.replace(
                turn.parse, slots={**turn.parse.slots, "colour": colour}
            )
        return self.product_desk.search(
            turn.parse, turn.message, carried, turn.shopper_id, turn.session_id, exclude
        )

    @staticmethod
    def _take(turn: Turn, found: Found) -> None:
        for name in ("route", "products", "state", "detailed", "positions", "fixed_reply"):
            setattr(turn, name, getattr(found, name))
        turn.relaxed, turn.features, turn.ran_out = found.relaxed, found.features, found.ran_out

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

    # -- act and save ----------------------------------------------------------------------

    def stream_reply(self, turn: Turn) -> Iterator[str]:
        """The reply, a checked sentence at a time; the turn is saved once it is complete.
        A conversation a person has taken over yields nothing."""
        started = time.perf_counter()
        pieces = []
        if turn.fixed_reply is not None:
            pieces.append(turn.fixed_reply)
            if turn.fixed_reply:
                yield turn.fixed_reply
        else:
            shown = turn.shown()
            lead = None
            if turn.route == "search" and turn.products and not turn.detailed:
                # Nothing close ("do you sell bikes?"): say so, and show the nearest we have.
                best = max(item.features.get("semantic", 0.0) for item in turn.products)
                key = "search_lead" if best >= NEAREST_ONLY else "search_nearest"
                lead = render(self.texts[key], thing=product_kind(shown))
            if turn.route == "search" and turn.products:
                notes = search_notes(turn.state, turn.relaxed, self.texts, turn.features, shown)
                if turn.ran_out:
                    notes = render(self.texts["search_ran_out"], thing=turn.ran_out) + " " + notes
                if notes:
                    pieces.append(notes)
                    yield notes
            stats: dict[str, Any] = {}
            for piece in self.writer.stream(
                turn.message,
                shown,
                turn.detailed,
                removed=turn.removed,
                lead=lead,
                stats=stats,
            ):
                pieces.append(piece)
                yield piece
            turn.timings.update(stats)
        turn.reply = "".join(pieces).strip()
        turn.timings["reply_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self._save(turn)
        turn.done = True

    def _save(self, turn: Turn) -> None:
        """The completed turn and what it changed in its session, in one transaction."""
        state = turn.state if turn.route in ("search", "details") else {}
        if turn.route == "handoff":
            state = {"handoff_reason": turn.handoff_reason or "asked"}
        record = TurnRecord(
            session_id=turn.session_id,
            message=redact_email(turn.message),
            intent=turn.parse.intent if turn.route != "empty" else "out_of_scope",
            slots=without_email(turn.parse.slots),
            state=without_email(state),
            shown=turn.shown_ids(),
            reply=turn.reply,
            route=turn.route,
            shopper_id=turn.shopper_id,
            cited=[doc.id for doc in turn.docs],
            removed=[redact_email(sentence) for sentence in turn.removed],
        )
        self.sessions.save_turn(record, turn.changes)


def _traits(values: dict[str, set[str]]) -> set[str]:
    """The catalog's colours and materials, lower-cased: what a reply may say of a product
    only when its record does (`claims.false_traits`)."""
    return {str(v).lower() for name in ("colour", "material") for v in values.get(name, ())}
