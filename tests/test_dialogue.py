"""The dialogue engine's customer-service side: verified order support, pending requests,
handoff, session ownership and the structured reply.

Unit tests run the tiny random LM, whose parses are noise, so each test says what the parser
read (`say(..., intent, slots)` replaces only `parser.parse`); routing, the order store, the
sessions and the reply are the real ones. The integration test talks to the shipped adapter.
"""

from __future__ import annotations

import json

import pytest

from bot.dialogue.engine import Assistant
from bot.dialogue.mood import is_angry
from bot.dialogue.order_desk import looks_like_address, only_details
from bot.nlu.parser import Parse
from bot.shop import Shop
from bot.stores.orders import Order, OrderItem
from bot.stores.sessions import SessionStore, UnknownSession
from retrieval.catalog import Product
from retrieval.policies import load_policy_docs

PRODUCTS = [
    Product(id="S1", title="Fleetfoot Road Runner Running Shoe – Red", brand="Fleetfoot",
            category="Shoes", price=89.99, rating=4.6, review_count=120,
            attributes={"colour": "red", "material": "mesh", "type": "running shoes"}),
    Product(id="S2", title="Fleetfoot Tempo Running Shoe – Blue", brand="Fleetfoot",
            category="Shoes", price=64.5, rating=4.1, review_count=40, in_stock=False,
            attributes={"colour": "blue", "material": "knit", "type": "running shoes"}),
    Product(id="S3", title="Stridewell Glide Running Shoe – Red", brand="Stridewell",
            category="Shoes", price=119.0, rating=4.8, review_count=300,
            attributes={"colour": "red", "material": "knit", "type": "running shoes"}),
]  # fmt: skip
ANN, BOB = "ann@example.com", "bob@example.com"
NOT_FOUND = (
    "I couldn't find an order with that order number and e-mail address. Please check both "
    "and try again, or ask me to pass you to a person."
)


def make_order(order_id: str, status: str, email: str = ANN) -> Order:
    shipped = status in ("shipped", "delivered")
    return Order(
        id=order_id,
        email=email,
        status=status,
        items=[OrderItem("S1", PRODUCTS[0].title, 89.99)],
        total=89.99,
        shipping_address="1 Oak Street, Springfield, IL 62704",
        created_at=1_760_000_000.0,
        updated_at=1_760_050_000.0,
        tracking_number="1Z999" if shipped else None,
        carrier="UPS" if shipped else None,
    )


@pytest.fixture
def shop(settings, catalog):
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    shop.orders.add(
        [
            make_order("12345678", "processing"),
            make_order("23456789", "shipped"),
            make_order("34567890", "delivered"),
            make_order("87654321", "processing", email=BOB),
        ]
    )
    yield shop
    shop.close()


@pytest.fixture
def say(assistant, monkeypatch):
    """Send a message as if the parser read it as `intent` with `slots`."""
    seen = []

    def send(message, intent, slots=None, session="s1", confidence=0.95, shopper=None):
        def parse(text, previous=None):
            seen.append(previous)
            return Parse(intent, dict(slots or {}), confidence)

        monkeypatch.setattr(assistant.parser, "parse", parse)
        return assistant.respond(message, session_id=session, shopper_id=shopper)

    send.contexts = seen
    return send


def verify(say, session="s1", order_id="12345678", email=ANN):
    say(f"where is my order {order_id}?", "track_order", {"order_id": order_id}, session)
    return say(email, "contact_customer_service", {"email": email}, session, confidence=0.4)


def test_an_order_is_shown_only_with_its_number_and_email(say, assistant):
    asked = say("where is my order 12345678?", "track_order", {"order_id": "12345678"})
    assert asked.route == "order_ask" and "e-mail address" in asked.reply
    assert asked.to_dict()["order"] is None and "Fleetfoot" not in asked.reply
    shown = say(ANN, "contact_customer_service", {"email": ANN}, confidence=0.37)
    assert shown.route == "order" and shown.parse.intent == "track_order"
    assert shown.reply.startswith("Order 12345678 (Fleetfoot Road Runner Running Shoe – Red)")
    assert "being prepared" in shown.reply
    order = shown.to_dict()["order"]
    assert order["id"] == "12345678" and order["status"] == "processing"
    assert "email" not in order
    state = assistant.sessions.state("s1")
    assert (state.verified_email, state.current_order, state.pending) == (ANN, "12345678", None)


def test_a_wrong_email_and_an_unknown_number_get_the_same_reply(say):
    wrong = say(f"order 87654321, {ANN}", "track_order", {"order_id": "87654321", "email": ANN})
    unknown = say(f"order 11112222, {ANN}", "track_order", {"order_id": "11112222", "email": ANN})
    assert wrong.reply == unknown.reply == NOT_FOUND
    assert wrong.route == unknown.route == "order_not_found"
    assert wrong.to_dict()["order"] is None


def test_another_session_cannot_see_a_verified_order(say):
    assert verify(say, "s1").route == "order"
    other = say("where is 12345678?", "track_order", {"order_id": "12345678"}, "s2")
    assert other.route == "order_ask" and other.to_dict()["order"] is None
    guessed = say(BOB, "track_order", {"email": BOB}, "s2")
    assert guessed.reply == NOT_FOUND


def test_a_verified_email_does_not_open_someone_elses_order(say):
    verify(say)
    bob = say("and order 87654321?", "track_order", {"order_id": "87654321"})
    assert bob.reply == NOT_FOUND and bob.order is None


def test_a_pending_request_completes_on_the_next_turns(say):
    first = say("where is my order?", "track_order")
    assert first.route == "order_ask" and "order number" in first.reply
    # The parser may make nothing of a bare number; the waiting request still takes it.
    second = say("it's 12345678", "out_of_scope", confidence=0.1)
    assert second.route == "order_ask" and second.parse.intent == "track_order"
    assert second.parse.slots["order_id"] == "12345678"
    assert say.contexts[-1] == {"intent": "track_order", "slots": {}}
    third = say(f"my email is {ANN}", "contact_customer_service", {"email": ANN}, confidence=0.6)
    assert third.route == "order" and "12345678" in third.reply
    assert say.contexts[-1] == {"intent": "track_order", "slots": {"order_id": "12345678"}}


def test_a_new_question_drops_the_pending_request(say, assistant):
    say("cancel my order", "cancel_order")
    search = say("red running shoes", "search_products", {"colour": "red"})
    assert search.route == "search"
    assert assistant.sessions.state("s1").pending is None
    later = say("12345678", "out_of_scope", confidence=0.1)
    assert later.route != "order_ask"


def test_cancel_after_verifying_and_refused_once_shipped(say, shop):
    verify(say)
    done = say("cancel it", "cancel_order", confidence=0.6)
    assert done.route == "order" and done.reply.startswith("Done: order 12345678 is cancelled")
    assert shop.orders.get("12345678").status == "cancelled"
    assert done.to_dict()["order"]["status"] == "cancelled"
    verify(say, "s2", "23456789")
    refused = say("cancel it", "cancel_order", session="s2")
    assert "can't be cancelled" in refused.reply
    assert shop.orders.get("23456789").status == "shipped"


def test_change_the_shipping_address_asks_for_it_then_changes_it(say, shop):
    verify(say)
    asked = say("change the shipping address", "change_shipping_address")
    assert asked.route == "order_ask" and "new shipping address for order 12345678" in asked.reply
    changed = say("9 Elm Lane, Austin, TX 78701", "set_up_shipping_address", confidence=0.3)
    assert changed.reply == "Done: order 12345678 will ship to 9 Elm Lane, Austin, TX 78701."
    assert shop.orders.get("12345678").shipping_address == "9 Elm Lane, Austin, TX 78701"
    asked_again = say(
        "change the shipping address of order 12345678 to 5 Hill Road, Boulder, CO 80302",
        "change_shipping_address",
        {"order_id": "12345678"},
    )
    assert asked_again.route == "order_ask"  # the request is not taken for the address
    assert shop.orders.get("12345678").shipping_address == "9 Elm Lane, Austin, TX 78701"
    verify(say, "s2", "23456789")
    refused = say("change the address", "change_shipping_address", session="s2")
    assert "can't be changed" in refused.reply and refused.route == "order"


def test_refund_of_a_delivered_order_then_its_status(say, shop):
    verify(say, order_id="34567890")
    asked = say("I want a refund", "get_refund")
    assert asked.reply.startswith("I've requested a refund for order 34567890")
    assert shop.orders.get("34567890").refund_status == "requested"
    status = say("where is my refund?", "track_refund")
    assert "has been requested" in status.reply
    invoice = say("send me the invoice", "get_invoice")
    assert "Total $89.99" in invoice.reply


def test_asking_for_a_person_hands_over_and_the_bot_goes_quiet(say, assistant):
    turn = say("I want to talk to a human", "contact_human_agent")
    assert turn.route == "handoff" and turn.handoff and turn.reply
    silent = say("hello? anyone?", "greeting")
    assert (silent.route, silent.reply, silent.handoff) == ("handed_off", "", True)
    assert list(assistant.stream_reply(assistant.start_turn("still there?", "s1"))) == []
    history = assistant.sessions.history("s1")
    assert [t["message"] for t in history][-2:] == ["hello? anyone?", "still there?"]
    assert assistant.sessions.handed_off()[0]["reason"] == "asked"
    assert assistant.release("s1") and not assistant.release("s1")
    assert say("hello", "greeting").route == "greeting"


def test_handoff_survives_a_restart(say, assistant, settings, shop, tiny_lm, monkeypatch):
    say("get me a person", "contact_human_agent")
    assistant.close()
    store = SessionStore(settings.sessions_path)
    assert store.state("s1").handed_off
    store.close()
    reopened = Assistant.open(settings, shop, lm=tiny_lm)
    monkeypatch.setattr(reopened.parser, "parse", lambda text, previous=None: Parse("greeting"))
    try:
        assert reopened.respond("hi", "s1").route == "handed_off"
        reopened.release("s1")
        assert reopened.respond("hi", "s2").route != "handed_off"
        assert not reopened.sessions.state("s1").handed_off
    finally:
        reopened.close()
    assistant.sessions = SessionStore(settings.sessions_path)


def test_repeated_failures_hand_over(say, assistant, settings):
    assert settings.handoff_after_failures == 3
    say("what's the weather today", "out_of_scope")
    say("can you fix the thing", "complaint", confidence=0.1)  # clarify
    say("hi", "greeting")  # served: the count starts again
    say("is it raining outside", "out_of_scope")
    say("   ", "greeting")  # empty: counts for nothing, resets nothing
    say("🙂🙂", "greeting")
    say("ok", "out_of_scope")  # too short to be a request the bot failed
    say("the quantity", "complaint", confidence=0.1)
    assert assistant.sessions.state("s1").failures == 1
    say("what about the weather", "out_of_scope")
    third = say("12345678", "track_order", {"order_id": "12345678", "email": BOB})
    assert third.route == "handoff" and third.handoff
    assert "not getting this right" in third.reply
    assert assistant.sessions.handed_off()[0]["reason"] == "failures"
    assert say("hello", "greeting").route == "handed_off"


def test_courtesies_the_parser_misreads_are_answered_in_kind(say, assistant):
    # what the shipped adapter reads for these MG-ShopDial shopper turns
    assert say("Hei hei", "out_of_scope").route == "greeting"
    well = say("I hope you're doing well!", "complaint", confidence=0.3)
    assert (well.route, well.parse.intent) == ("greeting", "greeting")
    assert "happy to help" in well.reply  # not a second welcome
    assert say("tents", "search_products", {"query": "tent"}).route == "search"
    thanks = say("I appreciate it!", "out_of_scope", confidence=0.95)
    assert thanks.route == "thanks" and thanks.reply.startswith("You're welcome")
    bye = say("I appreciate everything and hope you enjoy the rest of your day!", "complaint")
    assert bye.route == "goodbye" and "Have a great day" in bye.reply
    assert say("Have a nice day", "out_of_scope").route == "goodbye"
    asked = say("hi, what's the weather today", "out_of_scope", confidence=0.95)
    assert asked.route == "out_of_scope"  # a courtesy around a request is no courtesy
    assert assistant.sessions.state("s1").failures == 1


def test_an_angry_complaint_goes_to_a_person(say, assistant):
    assert say("THIS IS RIDICULOUS!!!", "complaint", session="a1").route == "handoff"
    assert assistant.sessions.state("a1").handoff_reason == "angry"
    assert say("I'd like to make a complaint", "complaint", session="a2").route == "policy"
    assert say("RED RUNNING SHOES!!!", "search_products", session="a3").route == "search"


def test_anger_and_detail_heuristics():
    assert is_angry("THIS IS RIDICULOUS, MY ORDER NEVER ARRIVED!!!", "delivery_options")
    assert is_angry("this is unacceptable", "complaint")
    assert not is_angry("this is unacceptable", "delivery_period")  # one sign, not a complaint
    assert not is_angry("Where is my order?", "complaint")
    assert only_details("it's 12345678") and only_details("my email is a@b.com")
    assert not only_details("cancel order 12345678")
    assert looks_like_address("9 Elm Lane, Austin, TX 78701")
    assert not looks_like_address("cancel it") and not looks_like_address("where is 12345678?")


def test_a_session_belongs_to_its_first_shopper(say, assistant):
    say("hi", "greeting", shopper="ann")
    with pytest.raises(UnknownSession, match="no session"):
        say("hi", "greeting", shopper="bob")
    assert say("hi again", "greeting", shopper="ann").route == "greeting"
    assert assistant.sessions.shopper_of("s1") == "ann"
    assert [t["shopper_id"] for t in assistant.sessions.history("s1")] == ["ann", "ann"]
    say("hi", "greeting", session="anon")
    assert say("hi", "greeting", session="anon", shopper="bob").route == "greeting"
    assert assistant.sessions.shopper_of("anon") == "bob"


def test_the_structured_reply(say):
    search = say("red running shoes", "search_products", {"colour": "red"})
    document = search.to_dict()
    assert {
        "session_id", "reply", "intent", "slots", "confidence", "route", "handoff", "products",
        "sources", "citations", "follow_ups", "comparison", "order", "removed", "timings_ms",
    } <= set(document)  # fmt: skip
    card = document["products"][0]
    assert {
        "id", "title", "price", "score", "currency", "rating", "review_count", "in_stock",
        "image_url", "reasons",
    } <= set(card)  # fmt: skip
    assert card["image_url"] == f"/images/{card['id']}.svg" and card["currency"] == "USD"
    assert document["follow_ups"][:2] == ["Show cheaper ones", "Compare the first two"]
    assert document["comparison"] is None and document["order"] is None
    json.dumps(document)


def test_policy_answers_cite_what_they_used(say):
    turn = say("how long do I have to return an item?", "check_refund_policy")
    document = turn.to_dict()
    assert turn.route == "policy" and document["citations"]
    for citation in document["citations"]:
        assert set(citation) == {"id", "title", "section", "quote"}
        assert citation["id"] in document["sources"]
        assert 0 < len(citation["quote"]) <= 240
    assert "Talk to a person" in document["follow_ups"]
    json.dumps(document)


def test_compare_products_gives_a_table(say, shop):
    search = say("running shoes", "search_products", {"query": "running shoes"})
    assert len(search.products) >= 2
    turn = say("compare the first two", "compare_products", {"product_refs": [1, 2]})
    table = turn.to_dict()["comparison"]
    first, second = (item.product for item in search.products[:2])
    assert table["columns"] == [first.title, second.title]
    rows = {row["attribute"]: row["values"] for row in table["rows"]}
    assert rows["Price"] == [f"${first.price:.2f}", f"${second.price:.2f}"]
    assert rows["Brand"] == [first.brand, second.brand]
    assert set(rows["In stock"]) <= {"Yes", "No"}
    assert rows["Rating"][0] == f"{first.rating:.1f} ({first.review_count} reviews)"
    json.dumps(turn.to_dict())


def test_order_replies_carry_the_order_and_fitting_follow_ups(say):
    turn = verify(say, order_id="23456789")
    document = turn.to_dict()
    assert "on its way with UPS, tracking number 1Z999" in document["reply"]
    assert document["order"]["tracking_number"] == "1Z999"
    assert document["follow_ups"] == ["Where is my order?", "Talk to a person"]
    json.dumps(document)


@pytest.mark.integration
def test_an_order_support_conversation_with_the_shipped_adapter(settings, shop, default_lm):
    """Five turns with the real parser: where is my order, the number, the e-mail, the
    status, then a cancellation."""
    real = Assistant.open(settings, shop, lm=default_lm)
    try:
        first = real.respond("where is my order?", session_id="c1")
        assert first.parse.intent == "track_order" and first.route == "order_ask"
        second = real.respond("it's 12345678", session_id="c1")
        assert second.route == "order_ask" and "e-mail" in second.reply
        third = real.respond(ANN, session_id="c1")
        assert third.route == "order" and "being prepared" in third.reply
        assert third.to_dict()["order"]["status"] == "processing"
        fourth = real.respond("please cancel the order", session_id="c1")
        assert fourth.parse.intent == "cancel_order" and fourth.route == "order"
        assert shop.orders.get("12345678").status == "cancelled"
        fifth = real.respond("thanks!", session_id="c1")
        assert fifth.route == "thanks" and not fifth.handoff
    finally:
        real.close()


def test_a_request_the_parser_misses_is_searched_when_it_matches_the_catalog(say):
    missed = say("fleetfoot running shoe in red", "out_of_scope", confidence=0.99, session="m1")
    assert missed.route == "search" and missed.parse.intent == "search_products"
    assert missed.products and missed.timings["catalog_match"] >= 0.4
    unrelated = say("what is the weather in paris tomorrow", "out_of_scope", session="m2")
    assert unrelated.route == "out_of_scope" and not unrelated.products
    assert unrelated.timings["catalog_match"] < 0.4
    # after a search the parser has called "a gift for a coffee lover" a greeting
    misread = say("fleetfoot running shoe in red", "greeting", confidence=0.76, session="m3")
    assert misread.route == "search" and misread.products
    greeting = say("hi there", "greeting", confidence=0.76, session="m4")
    assert greeting.route == "greeting" and not greeting.products
    thanks = say("thanks for the red fleetfoot shoe", "thanks", confidence=0.99, session="m6")
    assert thanks.route == "thanks"  # sure small talk is never searched
    service = say("fleetfoot running shoe in red", "review", confidence=0.99, session="m5")
    assert service.route == "policy"  # a confident service intent is left alone


def test_a_search_reply_opens_at_once_with_a_lead_the_lm_goes_on_from(assistant, monkeypatch):
    parse = Parse("search_products", {"query": "running shoes"}, 0.95)
    monkeypatch.setattr(assistant.parser, "parse", lambda text, context=None: parse)
    turn = assistant.start_turn("running shoes", session_id="lead1")
    pieces = assistant.stream_reply(turn)

    assert next(pieces) == "Here are some running shoes you might like. "
    rest = "".join(pieces)
    assert turn.reply == ("Here are some running shoes you might like. " + rest).strip()
    assert turn.timings["new_tokens"] > 0  # the LM wrote on from the lead


def test_a_question_about_one_named_product_gets_no_search_lead(assistant, monkeypatch):
    parse = Parse("product_details", {"query": "stridewell glide running shoe"}, 0.95)
    monkeypatch.setattr(assistant.parser, "parse", lambda text, context=None: parse)
    turn = assistant.respond("tell me about the stridewell glide", session_id="lead2")

    assert turn.detailed and len(turn.products) == 1
    assert not turn.reply.startswith("Here are some")


def test_a_search_nothing_fully_matches_drops_the_least_important_filter_and_says_so(say):
    turn = say(
        "green running shoes under $100",
        "search_products",
        {"query": "running shoes", "colour": "green", "price_max": 100.0},
    )
    assert turn.route == "search" and turn.relaxed == ["colour"]
    assert turn.reply.startswith(
        "I couldn't find any in green, so I left that out. Showing what I found under $100.00."
    )
    assert turn.products and all(item.product.price <= 100 for item in turn.products)
    assert turn.to_dict()["slots"]["colour"] == "green"  # what the shopper asked for stays
    both = say(
        "running shoes in size 15 under $50",
        "search_products",
        {"query": "running shoes", "size": "15", "price_max": 50.0},
        session="s2",
    )
    assert both.relaxed == ["size", "price_max"]
    assert both.reply.startswith("I couldn't find any in size 15 or under $50.00, so I left")


def test_a_search_says_the_filters_it_ran_under_even_when_carried_over(say):
    first = say("red running shoes", "search_products", {"query": "running shoes", "colour": "red"})
    assert first.reply.startswith("Showing what I found in red. Here are some")
    cheaper = say("under $100 please", "search_products", {"price_max": 100.0})
    assert cheaper.reply.startswith("Showing what I found in red, under $100.00.")
    plain = say("running shoes", "search_products", {"query": "running shoes"}, session="s3")
    assert plain.reply.startswith("Here are some")


def test_a_service_question_without_policy_documents_says_so(say, assistant, monkeypatch):
    monkeypatch.setattr(assistant.shop, "policy_hits", lambda text, k: [])
    turn = say("how long do I have to return an item?", "check_refund_policy")
    assert turn.route == "policy" and not turn.docs
    assert turn.reply.startswith("I couldn't find that in our store's policies.")


def test_asking_what_the_bot_can_do_is_answered_with_what_it_helps_with(say, assistant):
    for question, read_as in (
        ("what kind of stuff can you help me with", "place_order"),  # what the adapter reads
        ("what can you do?", "out_of_scope"),
    ):
        turn = say(question, read_as, session=f"about-{read_as}")
        assert turn.route == "small_talk" and turn.reply == assistant.texts["small_talk"]
    help_with = say("how can you help me with my return", "check_refund_policy", session="r")
    assert help_with.route == "policy"
