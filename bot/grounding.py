"""Grounded replies: the facts the LM may use, and the check on what it wrote.

The LM never writes a product's name or price itself. It sees the retrieved products as
numbered facts and refers to them as [1], [2], ...; `resolve_references` swaps each
reference for the record's own title and price. `ground_reply` then drops every sentence
that still names a price, a brand or a product that is not among the retrieved records, and
every reference to a number that was not shown. What is left can only state record facts.

    >>> from retrieval.catalog import Product
    >>> shown = [Product(id="P1", title="Trail Runner 2", brand="Fleetfoot", price=89.0)]
    >>> ground_reply("[1] is great. The Hollowpeak X costs $20.", shown, {"hollowpeak"})
    GroundedReply(text='Trail Runner 2 ($89.00) is great.', removed=['The Hollowpeak X costs $20.'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_FACT_PRODUCTS = 5
MAX_DESCRIPTION_CHARS = 160
MAX_POLICY_CHARS = 600
_REFERENCE = re.compile(r"\[(\d{1,2})\]")
_PRICE = re.compile(
    r"(?:[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\d[\d,]*(?:\.\d{1,2})?\s?(?:dollars|usd|eur|euros?|gbp))",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class GroundedReply:
    text: str
    removed: list[str] = field(default_factory=list)


def money(price: float | None, currency: str | None = "USD") -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get((currency or "USD").upper())
    if price is None:
        return "price on request"
    return f"{symbol}{price:,.2f}" if symbol else f"{price:,.2f} {currency}"


def product_facts(products: Sequence[Any], detailed: bool = False) -> str:
    """The numbered product facts shown to the LM: no names or prices, which it could only
    echo; None entries are skipped but keep their number."""
    lines = []
    for number, product in enumerate(products[:MAX_FACT_PRODUCTS], start=1):
        if product is None:  # a gap keeps the numbers the shopper saw ("the second one")
            continue
        attributes = product.attributes or {}
        traits = [attributes.get(k) for k in ("colour", "material", "size") if attributes.get(k)]
        stock = "in stock" if product.in_stock is not False else "out of stock"
        rating = (
            f"rated {product.rating:.1f} by {product.review_count or 0} shoppers"
            if product.rating is not None
            else "no ratings yet"
        )
        line = f"[{number}] {product.category or 'product'}; {rating}; {stock}"
        if traits:
            line += "; " + ", ".join(str(t) for t in traits)
        if attributes.get("features"):
            line += f"; {attributes['features']}"
        if detailed and product.description:
            line += f"; {product.description[:MAX_DESCRIPTION_CHARS]}"
        lines.append(line)
    return "Products:\n" + "\n".join(lines) if lines else "Products: none found."


def policy_facts(docs: Sequence[Any]) -> str:
    """Policy passages shown to the LM, each cut to a bounded length."""
    if not docs:
        return "Policies: none found."
    return "Policies:\n" + "\n".join(
        f"- {doc.section}: {' '.join(doc.text.split())[:MAX_POLICY_CHARS]}" for doc in docs
    )


def resolve_references(text: str, products: Sequence[Any]) -> str:
    """[n] -> the n-th product's title and price, from its record."""

    def swap(match: re.Match) -> str:
        number = int(match.group(1))
        if 1 <= number <= min(len(products), MAX_FACT_PRODUCTS) and products[number - 1]:
            product = products[number - 1]
            return f"{product.title} ({money(product.price, product.currency)})"
        return match.group(0)

    return _REFERENCE.sub(swap, text)


def ground_reply(
    text: str,
    products: Sequence[Any],
    known_brands: Iterable[str] = (),
) -> GroundedReply:
    """Resolve references, then drop each sentence that states a price, brand, product or
    reference the retrieved records do not back."""
    shown = list(products[:MAX_FACT_PRODUCTS])
    present = [p for p in shown if p is not None]
    allowed_prices = {round(p.price, 2) for p in present if p.price is not None}
    shown_text = " ".join(f"{p.title} {p.brand or ''}" for p in present).lower()
    foreign = [b.lower() for b in known_brands if b and b.lower() not in shown_text]
    kept, removed = [], []
    for sentence in _SENTENCE.split(text.strip()):
        refs = [int(n) for n in _REFERENCE.findall(sentence)]
        resolved = resolve_references(sentence, shown)
        lowered = resolved.lower()
        bad_ref = any(not 1 <= n <= len(shown) or shown[n - 1] is None for n in refs)
        bad_price = any(_price_value(p) not in allowed_prices for p in _PRICE.findall(resolved))
        bad_name = any(re.search(rf"\b{re.escape(name)}\b", lowered) for name in foreign)
        if bad_ref or bad_price or bad_name:
            removed.append(sentence)
        elif resolved.strip():
            kept.append(resolved)
    return GroundedReply(" ".join(kept), removed)


def _price_value(text: str) -> float | None:
    digits = re.search(r"\d[\d,]*(?:\.\d{1,2})?", text)
    return round(float(digits.group().replace(",", "")), 2) if digits else None


MAX_QUOTE_CHARS = 240
_MARKUP = re.compile(r"[*_`#>]+|^\s*[-+]\s+", re.M)
_WORD = re.compile(r"[a-z0-9]+")
_QUOTE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")  # list items end at the line's end


def policy_quote(doc: Any, text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    """The sentence of a policy section that shares the most words with `text` (the question
    and reply), markup removed and cut to `limit` characters: the words a citation shows.

    >>> from retrieval.policies import PolicyDoc
    >>> doc = PolicyDoc("r#w", "r", "Returns", "Window", "Items: **30 days**. Sale items: 14 days.")
    >>> policy_quote(doc, "how long for sale items?")
    'Sale items: 14 days.'
    """
    words = {w for w in _WORD.findall(text.lower()) if len(w) > 3}
    sentences = [s.strip() for s in _QUOTE_SPLIT.split(_MARKUP.sub("", doc.text)) if s.strip()]
    if not sentences:
        return ""
    best = max(sentences, key=lambda s: len(words & set(_WORD.findall(s.lower()))))
    best = " ".join(best.split())
    if len(best) > limit:
        best = best[: limit - 1].rsplit(" ", 1)[0] + "…"
    return best
