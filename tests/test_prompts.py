"""The prompts the shipped adapter was trained on stay byte for byte what they were when it
was trained: the product facts, the policy facts, the parser's "Before:" line and the
record-only fallback reply, all now filled from `prompts/`."""

from __future__ import annotations

import hashlib
import json

from bot.dialogue.grounding import product_facts
from bot.dialogue.writer import record_reply
from bot.nlu.parser import context_line
from bot.prompts import render_messages
from finetune.reply_examples import generate_reply_examples
from finetune.shopping_requests import generate_shopping_turns
from retrieval.catalog import Product
from retrieval.demo.catalog import generate_catalog
from retrieval.policies import load_policy_docs

# sha256 of the rendering below, made before the prompt text moved out of the code.
TRAINED_PROMPTS = "b30233db5194207c68550e6241d1f21dd6e741eda52001ce45c4a367708921ca"
# Policy sections the demo store gained after the adapter was trained: data the reply
# examples would sample, not prompt text, so they are left out of the rendering.
ADDED_AFTER_TRAINING = {"Discounts and promo codes"}

ODD_PRODUCTS = [
    Product(id="x1", title="Plain", price=3.5),  # no category, rating or attributes
    Product(id="x2", title="Gone", category="Home", rating=4.04, review_count=None,
            in_stock=False, attributes={"colour": "red", "size": "M", "features": "quiet"},
            description="A long description. " * 30),
]  # fmt: skip


def rendered_prompts() -> str:
    products = generate_catalog(300)
    policies = [doc for doc in load_policy_docs() if doc.section not in ADDED_AFTER_TRAINING]
    replies = generate_reply_examples(None, products, policies, 400, seed=3, render=False)
    turns = generate_shopping_turns(products, 300, 5, "train")
    text = []
    for row in replies:
        facts, message = row["facts"], row["message"]
        text.append(json.dumps(render_messages("reply", store="S", facts=facts, message=message)))
    for row in turns:
        context, message = context_line(row.get("previous")), row["text"]
        text.append(json.dumps(render_messages("parse_intent", context=context, message=message)))
    text.append(product_facts([products[0], None, products[2]], detailed=True))
    text.append(product_facts(ODD_PRODUCTS) + product_facts(ODD_PRODUCTS, detailed=True))
    text.append(product_facts([]) + context_line(None) + context_line({"intent": "greeting"}))
    text.append(record_reply(products[:4]) + record_reply([]) + record_reply(ODD_PRODUCTS))
    return "\n".join(text)


def test_the_prompts_the_adapter_was_trained_on_are_unchanged():
    rendered = hashlib.sha256(rendered_prompts().encode()).hexdigest()
    assert rendered == TRAINED_PROMPTS, "the trained prompts changed: retrain or revert"


def test_the_facts_read_as_the_adapter_learnt_them():
    assert product_facts(ODD_PRODUCTS) == (
        "Products:\n[1] product; no ratings yet; in stock\n"
        "[2] Home; rated 4.0 by 0 shoppers; out of stock; red, M; quiet"
    )
    previous = {"intent": "search_products", "slots": {"colour": "red", "price_max": 50.0}}
    assert context_line(previous) == "Before: search_products | colour=red; price_max=50\n"
