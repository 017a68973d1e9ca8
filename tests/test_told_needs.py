"""Needs told rather than named: "something to keep me dry when i bike to work" is a rain
jacket, not a quick-dry sandal its one keyword finds; "my back hurts from working at the
kitchen table all day" is a search for a chair, not a refusal; a filter no product of the
kind asked for has ("office chair for someone 6'4": size 6) is dropped, and the reply says so.

The real default embedder decides what is close in meaning (a hash embedder's similarities
would mean nothing); the tiny random LM stands in for the parser, and each message says
what the parser read (what the shipped adapter reads for it, in
benchmarks/conversations/demo_store.before.txt, or out of scope) and, where it matters, how
probable a product search the shipped intent head reads in it (tests/test_second_opinion.py).
"""

from __future__ import annotations

import pytest

from bot.dialogue.engine import Assistant
from bot.nlu.parser import Parse
from bot.shop import Shop
from retrieval.demo.catalog import generate_catalog
from retrieval.embeddings import Embedder, EmbeddingCache
from retrieval.index import CatalogIndex
from retrieval.policies import load_policy_docs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, tiny_lm):
    """The demo store (its 1,200 products and policies) with the real default embedder."""
    from bot.settings import load_settings

    folder = tmp_path_factory.mktemp("demo-store")
    settings = load_settings(data_dir=folder / "data", exploration=0.0)  # shipped thresholds
    embedder = Embedder(cache=EmbeddingCache(folder / "cache.sqlite"), onnx_dir=folder / "onnx")
    catalog = CatalogIndex.open(settings, embedder=embedder)
    catalog.ingest_products(generate_catalog(settings.demo_products))
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    opened = Assistant.open(settings, shop, lm=tiny_lm)
    yield opened
    opened.close()
    shop.close()


@pytest.fixture
def say(assistant, monkeypatch, request):
    def say(text, intent="out_of_scope", slots=None, head_search=0.0):
        parse = Parse(intent, dict(slots or {}), 0.95, head_search=head_search)
        monkeypatch.setattr(assistant.parser, "parse", lambda *_: parse)
        return assistant.respond(text, request.node.name)  # a session per test

    return say


def first_kind(turn) -> str:
    return turn.products[0].product.attributes["type"]


def test_a_need_that_names_no_product_gets_the_kind_closest_in_meaning(say):
    need = "something to keep me dry when i bike to work"
    turn = say(need, "search_products", {"query": need})  # the adapter's parse
    assert turn.route == "search"
    assert first_kind(turn) == "rain jacket"  # "dry" alone finds the quick-dry sandals


def test_a_named_product_is_searched_by_its_name(say):
    turn = say("Ridgeline Pro", "search_products", {"query": "Ridgeline Pro"})
    assert "Ridgeline" in turn.products[0].product.title  # not a Ridge X sleeping bag


def test_a_named_kind_is_searched_as_named(say):
    turn = say("quick-dry sandals", "search_products", {"query": "quick-dry sandals"})
    assert first_kind(turn) == "sandal"


def test_a_need_told_through_the_shoppers_life_is_searched_not_refused(say):
    back = say("my back hurts from working at the kitchen table all day")  # adapter: OOS
    assert back.route == "search" and first_kind(back) == "office chair"
    school = say("I have a kid who will start school soon")  # adapter: out of scope
    assert school.route == "search" and school.products
    assert "I can only help" not in school.reply


@pytest.mark.parametrize(
    "task", ["i need to call my mom", "share my location with my sister", "what is 4 + 7"]
)
def test_a_task_for_another_assistant_is_still_refused(say, task):
    assert say(task).route == "out_of_scope"


def test_a_filter_the_kind_asked_for_never_has_is_dropped_and_the_reply_says_so(say):
    slots = {"query": "office chair for someone", "size": "6"}  # the adapter's parse
    turn = say("office chair for someone 6'4 and 250 lbs", "search_products", slots)
    assert turn.route == "search" and turn.relaxed == ["size"]
    assert first_kind(turn) == "office chair"  # not sneakers in size 6
    assert turn.reply.startswith("I couldn't find any in size 6, so I left that out.")


def test_a_need_the_intent_head_reads_as_a_search_is_searched_though_few_words_match(say):
    need = "my home office is so dim i get headaches reading"
    assert say(need).route == "out_of_scope"  # the catalog alone is not close enough
    turn = say(need, head_search=0.99)
    assert turn.route == "search" and first_kind(turn) == "desk lamp"


def test_the_shoppers_own_colour_is_no_filter(say):
    need = "i burn so fast at the beach, 15 minutes and im lobster red"
    turn = say(need, "search_products", {"query": need})
    assert "colour" not in turn.parse.slots and turn.products


@pytest.mark.parametrize(
    "message", ["turn off the living room lights", "how do i remove a coffee blemish"]
)
def test_a_command_or_question_for_an_assistant_is_refused_whatever_the_head_reads(say, message):
    assert say(message, head_search=0.99).route == "out_of_scope"


def test_a_colour_asked_after_a_need_keeps_the_kind_the_need_meant(say):
    need = say("a warm coat for chicago winters", "search_products", {"query": "warm coat"})
    kind = first_kind(need)
    black = say("in black", "search_products", {"colour": "black"})
    assert first_kind(black) == kind  # not the black fleece the colour alone finds first
    assert black.products[0].product.attributes["colour"] == "black"
