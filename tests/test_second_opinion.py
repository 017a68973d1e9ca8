"""The parser's second opinion: where the LM calls a shopper's service question out of
scope, the shipped intent head (over the real default embedder) reads what it means; it
leaves what is truly unrelated, and sure parses, alone, and says where it reads a product
search in a need the LM refused. Training writes a head that loads back and is refused for
an embedder it was not trained for."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.nlu.parser import Parse
from bot.nlu.second_opinion import IntentHead, SecondOpinion
from bot.settings import load_settings
from finetune.intent_head import train_head
from retrieval.demo.catalog import generate_catalog
from retrieval.embeddings import Embedder, EmbeddingCache


@pytest.fixture(scope="module")
def second_opinion(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedder")
    embedder = Embedder(cache=EmbeddingCache(folder / "cache.sqlite"), onnx_dir=folder / "onnx")
    opinion = SecondOpinion.open(load_settings(data_dir=folder), embedder.embed_query)
    assert opinion is not None, "the shipped intent head is missing"
    return opinion


@pytest.mark.integration
@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("been waiting forever for the money from my return", "track_refund"),
        ("the parcel turned up soaked and the box was ripped open", "complaint"),
        ("hey can someone who is actually human look at this", "contact_human_agent"),
    ],
)
def test_a_service_question_the_lm_refused_gets_its_intent(second_opinion, message, meant):
    refused = Parse("out_of_scope", {}, 0.99)
    reviewed = second_opinion.review(refused, message)
    assert reviewed.intent == meant and reviewed.overruled == "out_of_scope"


@pytest.mark.integration
@pytest.mark.parametrize("message", ["what is the weather in paris", "set an alarm for 7"])
def test_what_is_truly_unrelated_stays_out_of_scope(second_opinion, message):
    assert second_opinion.review(Parse("out_of_scope", {}, 0.99), message).intent == "out_of_scope"


@pytest.mark.integration
@pytest.mark.parametrize(
    "need",
    ["i burn so fast at the beach, 15 minutes and im lobster red", "my home office is so dim"],
)
def test_a_need_the_lm_refused_is_read_as_a_product_search(second_opinion, need):
    reviewed = second_opinion.review(Parse("out_of_scope", {}, 0.99), need)
    assert reviewed.intent == "out_of_scope"  # the catalog's closeness decides (the chat)
    assert reviewed.head_search >= 0.5


@pytest.mark.integration
def test_a_sure_parse_is_left_as_the_lm_read_it(second_opinion):
    sure = Parse("search_products", {"query": "phone case"}, 0.97)
    assert second_opinion.review(sure, "been waiting forever for the money from my return") is sure


def test_a_trained_head_loads_back_only_for_its_embedding_model(tmp_path, embedder):
    shared = tmp_path / "shared"
    shared.mkdir()
    support = [
        {"text": f"{verb} my order please {n}", "intent": intent}
        for n in range(8)
        for verb, intent in (("cancel", "cancel_order"), ("track", "track_order"))
    ]
    oos = [
        {"text": f"what is the weather like {n}", "intent": "out_of_scope", "clinc_intent": "w"}
        for n in range(8)
    ]
    for name, rows in (
        ("customer_support_intents.dev.jsonl", support),
        ("out_of_scope.dev.jsonl", oos),
    ):
        (shared / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    card = train_head(
        embedder,
        generate_catalog(60),
        tmp_path / "head",
        embedding_model="hash",
        shared_data=shared,
    )

    assert {"cancel_order", "track_order", "out_of_scope", "search_products"} <= set(
        card["intents"]
    )
    assert card["embedding_model"] == "hash" and 0 <= card["validation"]["accuracy"] <= 1
    head = IntentHead.load(tmp_path / "head", "hash")
    ranked = head.rank(embedder.embed_query("cancel my order please 3"))
    assert ranked[0][0] == "cancel_order"
    assert IntentHead.load(tmp_path / "head", "default") is None  # another embedder's vectors
    assert head.rank(np.zeros(7, dtype=np.float32)) == []  # a vector of another size
