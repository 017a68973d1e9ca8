"""SFT examples for grounded replies, generated from the catalog and the policy documents.

Each example is the reply prompt (`prompts/reply.*.txt`) with numbered product facts or
policy passages, and a reply that uses only those facts and names products only as [n].
That is the habit the adapter learns; `bot/grounding.py` checks it at run time anyway.

    >>> from retrieval.demo.catalog import generate_catalog
    >>> rows = generate_reply_examples(None, generate_catalog(50), [], 3, seed=0, render=False)
    >>> sorted(rows[0])
    ['completion', 'facts', 'message', 'task']
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bot.dialogue.grounding import policy_facts, product_facts
from bot.dialogue.writer import plural
from bot.prompts import render_chat_text

STORE_NAME = "Shopbot Demo Store"

_SEARCH_ASKS = (
    "show me {thing}",
    "i'm looking for {thing}",
    "any {thing}?",
    "do you have {thing}",
    "{thing} please",
    "can you recommend {thing}",
)
_OPENERS = (
    "Here are some {thing} you might like.",
    "I found a few {thing} for you.",
    "These {thing} look like a good match.",
    "Good news, we have {thing} in the shop.",
)
_CLOSERS = (
    "Want me to narrow it down by colour, size or budget?",
    "Shall I show you more details on one of them?",
    "Would you like to compare any of them?",
    "",
)
_NONE = (
    "Sorry, I couldn't find any {thing} matching that. Would you like to try another colour, "
    "brand or budget?",
    "I don't see any {thing} that fit those filters right now. Shall I widen the search?",
)
_POLICY_ASKS = (
    "what is your {topic}?",
    "tell me about {topic}",
    "how does {topic} work",
    "question about {topic}",
)


def _trait(product: Any) -> str:
    attributes = product.attributes or {}
    if product.in_stock is False:
        return "is out of stock at the moment"
    if product.rating is not None and product.rating >= 4.5:
        return f"is rated {product.rating:.1f} by {product.review_count or 0} shoppers"
    for key in ("material", "colour"):
        if attributes.get(key):
            return f"comes in {attributes[key]}"
    return "is in stock"


def _search_reply(rng: random.Random, shown: list, thing: str) -> str:
    parts = [rng.choice(_OPENERS).format(thing=thing)]
    parts.append(f"[1] {_trait(shown[0])}.")
    if len(shown) > 1:
        parts.append(f"[2] {_trait(shown[1])}.")
    closer = rng.choice(_CLOSERS)
    return " ".join(parts + ([closer] if closer else []))


def _details_reply(product: Any) -> str:
    attributes = product.attributes or {}
    traits = ", ".join(str(attributes[k]) for k in ("colour", "material") if attributes.get(k))
    text = f"[1] {_trait(product)}."
    if traits:
        text += f" It is {traits}."
    if attributes.get("features"):
        text += f" Shoppers choose it for being {attributes['features']}."
    return text


def _compare_reply(first: Any, second: Any) -> str:
    r1, r2 = first.rating or 0, second.rating or 0
    better = "[1]" if r1 >= r2 else "[2]"
    cheaper = "[1]" if (first.price or 0) <= (second.price or 0) else "[2]"
    return (
        f"[1] is rated {r1:.1f} and [2] is rated {r2:.1f}, so {better} has the better "
        f"reviews, while {cheaper} is the cheaper of the two."
    )


def _policy_reply(doc: Any) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(doc.text.split()))
    return " ".join(sentences[:2]) + " Anything else I can help with?"


def generate_reply_examples(
    tokenizer: Any,
    products: Sequence[Any],
    policies: Sequence[Any],
    n: int,
    seed: int = 0,
    render: bool = True,
) -> list[dict[str, Any]]:
    """n reply examples: searches (with and without results), details, comparisons and
    policy answers. With render=False the rows keep facts and message instead of a prompt."""
    rng = random.Random(seed)
    by_type: dict[str, list] = defaultdict(list)
    for product in products:
        by_type[(product.attributes or {}).get("type") or product.category or "item"].append(
            product
        )
    types = sorted(by_type)
    rows = []
    for _ in range(n):
        kind = rng.random()
        if policies and kind < 0.2:
            doc = rng.choice(policies)
            docs = [doc] + rng.sample(list(policies), k=min(1, len(policies)))
            message = rng.choice(_POLICY_ASKS).format(topic=doc.section.lower())
            facts, reply = policy_facts(list(dict.fromkeys(docs))), _policy_reply(doc)
        else:
            kind_type = rng.choice(types)
            group = by_type[kind_type]
            thing = plural(kind_type)
            shown = rng.sample(group, k=min(len(group), rng.randint(1, 5)))
            if kind < 0.3:
                message = rng.choice(_SEARCH_ASKS).format(thing=thing)
                facts, reply = product_facts([]), rng.choice(_NONE).format(thing=thing)
            elif kind < 0.45:
                message = rng.choice(("tell me more about it", "what is it made of?", "details?"))
                facts, reply = product_facts(shown[:1], detailed=True), _details_reply(shown[0])
            elif kind < 0.55 and len(shown) >= 2:
                message = rng.choice(("compare them", "which one is better?", "1 or 2?"))
                facts, reply = product_facts(shown[:2]), _compare_reply(shown[0], shown[1])
            else:
                message = rng.choice(_SEARCH_ASKS).format(thing=thing)
                facts, reply = product_facts(shown), _search_reply(rng, shown, thing)
        row = {"task": "reply", "facts": facts, "message": message, "completion": reply}
        if render:
            prompt = render_chat_text(
                tokenizer, "reply", store=STORE_NAME, facts=facts, message=message
            )
            row = {"task": "reply", "prompt": prompt, "completion": reply}
        rows.append(row)
    return rows
