"""Grounded replies: the facts the LM may use, and the check on what it wrote.

The LM never writes a product's name or price itself. It sees the retrieved products as
numbered facts and refers to them as [1], [2], ...; `resolve_references` swaps each
reference for the record's own title and price. `ground_reply` then drops every sentence
that still names a price, a brand or a product that is not among the retrieved records, and
every reference to a number that was not shown, and every sentence with a URL, phone number
or e-mail address that the policy text used for the reply does not hold. What is left can
only state record facts.

Product records come from the store's feeds and may be hostile, so their text is data:
`plain_text` is the only way a record field reaches a reply (no markup, links or contact
details), and product records never back a contact detail.

    >>> from retrieval.catalog import Product
    >>> shown = [Product(id="P1", title="Trail Runner 2", brand="Fleetfoot", price=89.0)]
    >>> ground_reply("[1] is great. The Hollowpeak X costs $20.", shown, {"hollowpeak"})
    GroundedReply(text='Trail Runner 2 ($89.00) is great.', removed=['The Hollowpeak X costs $20.'])
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bot.prompts import prompt_table, render
from bot.redact import EMAIL, ISO_DATE, PHONE, PHONE_DIGITS

MAX_FACT_PRODUCTS = 5
MAX_DESCRIPTION_CHARS = 160
MAX_POLICY_CHARS = 600
MAX_SHOWN_TITLE_CHARS = 120
MAX_TRAIT_CHARS = 60
_REFERENCE = re.compile(r"\[(\d{1,2})\]")
_PRICE = re.compile(
    r"(?:[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\d[\d,]*(?:\.\d{1,2})?\s?(?:dollars|usd|eur|euros?|gbp))",
    re.I,
)
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")  # between the sentences of a reply
_TAG = re.compile(r"<[^<>]*>")
_MARKUP_CHARS = re.compile(r"!?\[|[\]<>*_`#|~\\]")
# A scheme or "www." and what follows, or a bare domain ("evil.example", "evil.com/path");
# trailing punctuation belongs to the sentence. It errs on the side of finding: "Node.js"
# reads as a domain too.
_URL = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]{0,30}://|\bwww\.)[^\s<>\"]*(?<![.,;:!?)'\"])"
    r"|(?<![\w@.-])(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])"
    r"(?::\d+)?(?:/[^\s<>\"]*(?<![.,;:!?)'\"]))?",
    re.I,
)
# Where an e-mail address may be: EMAIL itself takes time quadratic in a long unbroken run.
_NEAR_AT = re.compile(r"[^\s@]{0,64}@\S{0,255}")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)")
_SPACE_BEFORE_MARK = re.compile(r"\s+([.,;:!?)])")


@dataclass
class GroundedReply:
    text: str
    removed: list[str] = field(default_factory=list)


def money(price: float | None, currency: str | None = "USD") -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get((currency or "USD").upper())
    if price is None:
        return "price on request"
    return f"{symbol}{price:,.2f}" if symbol else f"{price:,.2f} {currency}"


def plain_text(value: Any, limit: int) -> str:
    """A record field as safe display text: control characters removed, whitespace
    collapsed, HTML tags and the characters markdown builds links, images, emphasis, code,
    headings and tables from (`[ ] < > * _ ` # | ~ \\`, and a "!" before "[") removed,
    URLs (with a scheme, "www." or a bare domain), e-mail addresses and phone numbers
    removed, cut to `limit` characters at a word. Parentheses stay: without brackets they
    form no link. It errs on the side of removing: "Node.js" reads as a domain.

    >>> plain_text("[Free gift](https://evil.example) **Rain\\nJacket**", 40)
    'Free gift Rain Jacket'
    >>> plain_text("raincoat. urgent: call +1 555 0100 or visit evil.example", 40)
    'raincoat. urgent: call or visit'
    """
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", html.unescape(str(value)))
    # Format characters (zero-width, bidi overrides) go entirely, so "evil\u200b.example"
    # is still found as a domain; other control characters become spaces.
    text = "".join(
        " " if unicodedata.category(char) == "Cc" else char
        for char in text
        if unicodedata.category(char) != "Cf"
    )
    text = _MARKUP_CHARS.sub("", _TAG.sub(" ", text))
    _, text = _take_contacts(text)
    text = _EMPTY_BRACKETS.sub(" ", text)
    if text.count("(") != text.count(")"):
        text = text.replace("(", " ").replace(")", " ")
    text = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(text.split())).lstrip(".,;:!?-+= ")
    if len(text) > limit:
        cut = text[: max(limit - 1, 0)]
        if text[len(cut)] != " ":  # a word was cut through: drop it
            cut = cut.rsplit(" ", 1)[0]
        text = cut.rstrip(" ,;:") + "…"
    return text


def contact_details(text: str) -> set[str]:
    """The URLs, e-mail addresses and phone numbers in `text`, normalised for comparison:
    "url:" + host and path lowercased (no scheme, "www.", port, query or trailing "/"),
    "email:" + the address lowercased, "phone:" + its digits.

    >>> sorted(contact_details("Mail Help@Shop.example or call +1 (800) 555-0199."))
    ['email:help@shop.example', 'phone:18005550199']
    >>> contact_details("See https://www.Shop.example/Returns/?a=1 for details.")
    {'url:shop.example/returns'}
    """
    found, _ = _take_contacts(text)
    return found


def _take_contacts(text: str) -> tuple[set[str], str]:
    """The normalised contact details in `text`, and `text` without them. E-mail addresses
    go first, so their domains are not read as URLs; then URLs, whose digits are no phone."""
    found: set[str] = set()

    def email(match: re.Match[str]) -> str:
        found.add("email:" + match.group().lower())
        return " "

    def url(match: re.Match[str]) -> str:
        found.add("url:" + _url_key(match.group()))
        return " "

    def phone(match: re.Match[str]) -> str:
        digits = "".join(char for char in match.group() if char.isdigit())
        low, high = PHONE_DIGITS
        if ISO_DATE.fullmatch(match.group()) or not low <= len(digits) <= high:
            return match.group()
        found.add("phone:" + digits)
        return " "

    text = _NEAR_AT.sub(lambda near: EMAIL.sub(email, near.group()), text)
    text = _URL.sub(url, text)
    return found, PHONE.sub(phone, text)


def _url_key(url: str) -> str:
    key = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url.lower())
    key = re.split(r"[?#]", key, maxsplit=1)[0]
    host, _, path = key.partition("/")
    host = host.rpartition("@")[2].split(":")[0].removeprefix("www.")
    return f"{host}/{path}".rstrip("/")


@lru_cache(maxsize=64)
def _backed_contacts(backing: str) -> frozenset[str]:
    found = contact_details(backing)
    hosts = {"url:" + key[4:].split("/")[0] for key in found if key.startswith("url:")}
    return frozenset(found | hosts)  # naming a backed URL's host alone is backed too


def product_facts(products: Sequence[Any], detailed: bool = False) -> str:
    """The numbered product facts shown to the LM (`prompts/facts.toml`): no names or
    prices, which it could only echo, and record text only as `plain_text` (no links or
    contact details to copy); None entries are skipped but keep their number."""
    texts = prompt_table("facts.toml")["products"]
    lines = []
    for number, product in enumerate(products[:MAX_FACT_PRODUCTS], start=1):
        if product is None:  # a gap keeps the numbers the shopper saw ("the second one")
            continue
        attributes = product.attributes or {}
        traits = [
            plain_text(attributes.get(k), MAX_TRAIT_CHARS) for k in ("colour", "material", "size")
        ]
        traits = [trait for trait in traits if trait]
        features = plain_text(attributes.get("features"), MAX_DESCRIPTION_CHARS)
        description = plain_text(product.description, MAX_DESCRIPTION_CHARS)
        rating = (
            render(texts["rated"], rating=product.rating, reviews=product.review_count or 0)
            if product.rating is not None
            else texts["unrated"]
        )
        line = render(
            texts["line"],
            number=number,
            category=plain_text(product.category, MAX_TRAIT_CHARS) or texts["no_category"],
            rating=rating,
            stock=texts["in_stock" if product.in_stock is not False else "out_of_stock"],
        )
        more = [", ".join(traits), features, description if detailed else ""]
        lines.append(line + "".join(render(texts["more"], text=text) for text in more if text))
    if not lines:
        return texts["none"]
    return texts["heading"] + "\n" + "\n".join(lines)


def policy_facts(docs: Sequence[Any]) -> str:
    """Policy passages shown to the LM (`prompts/facts.toml`), each cut to a bounded length."""
    texts = prompt_table("facts.toml")["policies"]
    if not docs:
        return texts["none"]
    lines = [
        render(
            texts["line"], section=doc.section, text=" ".join(doc.text.split())[:MAX_POLICY_CHARS]
        )
        for doc in docs
    ]
    return texts["heading"] + "\n" + "\n".join(lines)


def resolve_references(text: str, products: Sequence[Any]) -> str:
    """[n] -> the n-th product's title (as `plain_text`) and price, from its record."""

    def swap(match: re.Match) -> str:
        number = int(match.group(1))
        if 1 <= number <= min(len(products), MAX_FACT_PRODUCTS) and products[number - 1]:
            product = products[number - 1]
            return f"{shown_title(product)} ({money(product.price, product.currency)})"
        return match.group(0)

    return _REFERENCE.sub(swap, text)


def shown_title(product: Any) -> str:
    """A product's title as a reply shows it: `plain_text`, or "this product" when nothing of
    it is left."""
    return plain_text(product.title, MAX_SHOWN_TITLE_CHARS) or "this product"


def ground_reply(
    text: str,
    products: Sequence[Any],
    known_brands: Iterable[str] = (),
    *,
    backing: str = "",
) -> GroundedReply:
    """Resolve references, then drop each sentence that states a price, brand, product or
    reference the retrieved records do not back, or a URL, phone number or e-mail address
    that `backing` (the policy and order text this reply may use) does not hold. Product
    records never back contact details; prices are checked against the products only.

    >>> policy = "Call 1-800-555-0199 or mail support@shop.example."
    >>> ground_reply("Call 1 800 555 0199. Or try evil.example.", [], backing=policy).text
    'Call 1 800 555 0199.'
    """
    backed = _backed_contacts(backing)
    shown = list(products[:MAX_FACT_PRODUCTS])
    present = [p for p in shown if p is not None]
    allowed_prices = {round(p.price, 2) for p in present if p.price is not None}
    shown_text = " ".join(f"{p.title} {p.brand or ''}" for p in present).lower()
    foreign = [b.lower() for b in known_brands if b and b.lower() not in shown_text]
    kept, removed = [], []
    for sentence in SENTENCE_BREAK.split(text.strip()):
        refs = [int(n) for n in _REFERENCE.findall(sentence)]
        resolved = resolve_references(sentence, shown)
        lowered = resolved.lower()
        bad_ref = any(not 1 <= n <= len(shown) or shown[n - 1] is None for n in refs)
        bad_price = any(_price_value(p) not in allowed_prices for p in _PRICE.findall(resolved))
        bad_name = any(re.search(rf"\b{re.escape(name)}\b", lowered) for name in foreign)
        bad_contact = not contact_details(_REFERENCE.sub(" ", sentence)) <= backed
        if bad_ref or bad_price or bad_name or bad_contact:
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
