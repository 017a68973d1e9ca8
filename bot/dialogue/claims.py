"""What a reply says about the products shown, checked against their records.

`false_claims` finds the sentences that state a rating, a review count, a stock status or
a comparison ("cheaper", "better rated", "more popular", "lighter") the records do not
bear out. A comparison is about the first product a sentence names (by title, or as "the
first one"): it must be strictly the cheapest, best rated, ... of the products the sentence
names, or of all those shown when it names one. A claim the records cannot settle (weight,
a product nobody can tell which) counts as false: the check errs on the side of dropping.

    >>> from retrieval.catalog import Product
    >>> a = Product(id="A", title="Swift Blender", price=60.0, rating=3.6, review_count=10)
    >>> b = Product(id="B", title="Vortex Blender", price=80.0, rating=3.9, review_count=40)
    >>> false_claims("Swift Blender is rated 3.6, so Swift Blender has the better reviews.", [a, b])
    ['Swift Blender is rated 3.6, so Swift Blender has the better reviews.']
    >>> false_claims("Swift Blender is cheaper than Vortex Blender.", [a, b])
    []
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bot.dialogue.grounding import SENTENCE_BREAK, shown_title
from bot.dialogue.signals import FILLER_WORDS

_RATING = re.compile(
    r"\b(?:rated|rating of|rating is|rating:|scores?)\s+(\d(?:\.\d{1,2})?)\b"
    r"|\b(\d(?:\.\d{1,2})?)\s*(?:stars?|/\s*5\b|out of (?:5|five)\b)",
    re.I,
)
_REVIEWS = re.compile(r"\b(\d[\d,]*)\s+(?:reviews?|ratings|shoppers|customers|buyers)\b", re.I)
_OUT_OF_STOCK = re.compile(r"\b(?:out of stock|sold out|not in stock|unavailable)\b", re.I)
_IN_STOCK = re.compile(r"\b(?:in stock|available now|ready to ship)\b", re.I)
_SEVERAL = re.compile(r"\b(?:share|both|are the|each|equally)\b", re.I)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_ORDINAL = re.compile(r"\b(first|second|third|fourth|fifth)\b(?:\s+(?:one|option|product))?", re.I)


def _price(product: Any) -> float | None:
    return product.price


def _rating(product: Any) -> float | None:
    return product.rating


def _reviews(product: Any) -> float | None:
    return product.review_count


# (words, what is compared, whether more of it is what the words claim)
COMPARISONS: list[tuple[re.Pattern[str], Callable[[Any], float | None] | None, bool]] = [
    (
        re.compile(
            r"\b(?:cheaper|cheapest|less expensive|least expensive|more affordable"
            r"|most affordable|lower[- ]priced|lowest[- ]priced|lower price|lowest price"
            r"|costs? less|better price)\b",
            re.I,
        ),
        _price,
        False,
    ),
    (
        re.compile(
            r"\b(?:more expensive|most expensive|pricier|priciest|costlier|higher[- ]priced"
            r"|higher price|highest price|costs? more)\b",
            re.I,
        ),
        _price,
        True,
    ),
    (
        re.compile(
            r"\b(?:better|higher|best|highest|top)[- ](?:rated|reviewed|rating|reviews|ratings)\b"
            r"|\bmore highly rated\b|\bthe better reviews\b",
            re.I,
        ),
        _rating,
        True,
    ),
    (
        re.compile(
            r"\b(?:lower|worse|lowest|worst)[- ](?:rated|reviewed|rating|reviews|ratings)\b", re.I
        ),
        _rating,
        False,
    ),
    (
        re.compile(
            r"\b(?:more popular|most popular|more reviews|most reviews|most reviewed)\b", re.I
        ),
        _reviews,
        True,
    ),
    # Nothing in a record settles these: a sentence that claims them is dropped.
    (
        re.compile(
            r"\b(?:lighter|lightest|heavier|heaviest|more durable|most durable|sturdier"
            r"|higher quality|better quality|better made)\b",
            re.I,
        ),
        None,
        True,
    ),
]


# Words of asking a reply may take from the shopper's message without a record saying
# them, besides the filler: the last line, the bot's own offers ("narrow it down by size?").
_ASKING = """it's were do does did can could would will should have has had get got need want wants
    looking look show tell find which what how who when where why there here yes no not one
    ones them they their good great nice best better more most much about also too than then
    please thanks buy price prices cost costs rated rating ratings review reviews stock
    available recommend recommended help sure ok okay well
    narrow down colour color size sizes budget compare details"""
_ASKING_WORDS = FILLER_WORDS | frozenset(_ASKING.split())


def echoed_claims(text: str, message: str, shown: Sequence[Any]) -> list[str]:
    """The sentences of `text` that answer the shopper's `message` with its own words where
    no record of the products `shown` says them: "do you have the second one in a bigger
    size?" -> "It is in a bigger size." (no record says "bigger"), "does it float?" -> "It
    floats.". A small LM echoes the question as the answer; such a sentence is dropped."""
    unsaid = {_stem(w) for w in unsaid_words(message, shown)}
    if not unsaid:
        return []
    return [
        s
        for s in SENTENCE_BREAK.split(text.strip())
        if s and unsaid & {_stem(w) for w in _words(s)}
    ]


def unsaid_words(message: str, shown: Sequence[Any]) -> list[str]:
    """The shopper's words, but those of asking ("do", "which", "have"), that no record of
    the products `shown` says, in the message's order: "do any of these have a rainfly" ->
    ["rainfly"] when none of their records mentions one."""
    products = [p for p in shown if p is not None]
    if not products:
        return []
    known = {_stem(w) for p in products for w in _words(_record_text(p))}
    asking = {_stem(w) for w in _ASKING_WORDS}
    unsaid = [w for w in _words(message) if _stem(w) not in known and _stem(w) not in asking]
    return list(dict.fromkeys(unsaid))


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[^\W\d_]{3,}", text.lower()) if w not in _ASKING_WORDS]


def _stem(word: str) -> str:
    """A word's first five letters, a plural's "s" dropped: "floats" and "floating" are
    "float", "extra-thick" holds "thick"."""
    return re.sub(r"(?<=\w\w)s$", "", word)[:5]


def _record_text(product: Any) -> str:
    attributes = product.attributes or {}
    return " ".join(
        str(part)
        for part in (
            product.title,
            product.description,
            product.category,
            product.brand,
            *attributes.keys(),
            *attributes.values(),
        )
        if part
    )


_SIZE_SAID = re.compile(r"\bsizes?\s+((?:\d+(?:\.5)?|x*[sml]|x+l)(?:\s*(?:,|and|or|to)\s*"
                        r"(?:\d+(?:\.5)?|x*[sml]|x+l))*)\b", re.I)  # fmt: skip


# A colour or material given to a product follows one of these ("comes in titanium", "It is
# black, silicone", "made of down"); "narrow it down" and "crystal clear sound" give none.
_GIVEN = r"(?:\b(?:in|of|from|is|are|and|with|a|an)\s+|,\s*)"


def false_traits(text: str, shown: Sequence[Any], traits: Iterable[str] = ()) -> list[str]:
    """The sentences of `text` that give the products `shown` a colour or material (of the
    catalog's `traits`, lower-cased) or a size no record of theirs has: "It comes in red"
    of a blue jacket, "available in size 12" of shoes made in 6 to 10. Of the products a
    sentence names, or of all shown when it names none."""
    products = [p for p in shown if p is not None]
    if not products:
        return []
    named_traits = sorted({t for t in traits if t}, key=len, reverse=True)  # "natural rubber"
    given = re.compile(rf"{_GIVEN}({'|'.join(map(re.escape, named_traits))})\b")
    false = []
    for sentence in SENTENCE_BREAK.split(text.strip()):
        if not sentence:
            continue
        lowered = sentence.lower()
        named = list({id(p): p for _, p in _mentions(sentence, shown)}.values()) or products
        records = [_record_text(p).lower() for p in named]
        unbacked = bool(named_traits) and any(
            not any(re.search(rf"\b{re.escape(trait)}\b", r) for r in records)
            for trait in {found.group(1) for found in given.finditer(lowered)}
        )
        sizes = {
            size.strip().lower()
            for p in named
            for size in str((p.attributes or {}).get("size", "")).split(",")
        }
        for said in _SIZE_SAID.finditer(lowered):
            listed = re.findall(r"\d+(?:\.5)?|x*[sml]\b|x+l\b", said.group(1))
            unbacked = unbacked or any(size not in sizes for size in listed)
        if unbacked:
            false.append(sentence)
    return false


def false_claims(text: str, shown: Sequence[Any]) -> list[str]:
    """The sentences of `text` that claim about the products `shown` (None entries keep
    their number) what their records do not say; [] when no product is shown."""
    products = [p for p in shown if p is not None]
    if not products:
        return []
    return [s for s in SENTENCE_BREAK.split(text.strip()) if s and not _holds(s, shown, products)]


def _holds(sentence: str, shown: Sequence[Any], products: list[Any]) -> bool:
    mentions = _mentions(sentence, shown)
    named: list[Any] = []
    for _, product in mentions:
        if all(product is not p for p in named):
            named.append(product)
    about = named or products
    for match in _RATING.finditer(sentence):
        value = float(match.group(1) or match.group(2))
        if not any(p.rating is not None and abs(p.rating - value) < 0.05 for p in about):
            return False
    for match in _REVIEWS.finditer(sentence):
        value = int(match.group(1).replace(",", ""))
        if not any(p.review_count == value for p in about):
            return False
    if _OUT_OF_STOCK.search(sentence) and not any(p.in_stock is False for p in about):
        return False
    if _IN_STOCK.search(sentence) and about and all(p.in_stock is False for p in about):
        return False
    for words, value, more in COMPARISONS:
        claim = words.search(sentence)
        if claim is None:
            continue
        if value is None or not named:
            return False
        subjects = _subjects(sentence, mentions, claim.start())
        field = named if any(p not in subjects for p in named) else products
        others = [p for p in field if all(p is not s for s in subjects)]
        mine = [value(p) for p in subjects]
        theirs = [value(p) for p in others]
        if not others or None in mine or None in theirs or len(set(mine)) > 1:
            return False
        if not all(mine[0] > v if more else mine[0] < v for v in theirs):
            return False
    return True


def _subjects(sentence: str, mentions: list[tuple[int, Any]], at: int) -> list[Any]:
    """What a comparison at `at` is about: the product named last before it ("so A has the
    better reviews"), all those named before it when the sentence speaks of several ("A and
    B share the best rating"), or the first named after it ("the cheaper one is A")."""
    before = [product for position, product in mentions if position < at]
    if not before:
        return [mentions[0][1]]
    if _SEVERAL.search(sentence):
        unique: list[Any] = []
        for product in before:
            if all(product is not p for p in unique):
                unique.append(product)
        return unique
    return [before[-1]]


def _mentions(sentence: str, shown: Sequence[Any]) -> list[tuple[int, Any]]:
    """Where the sentence names a shown product, by title or by its number among those
    shown ("the second one"), in order."""
    lowered = sentence.lower()
    found: list[tuple[int, Any]] = []
    for product in shown:
        if product is None:
            continue
        title = shown_title(product).lower()
        found += [(m.start(), product) for m in re.finditer(re.escape(title), lowered)]
    for match in _ORDINAL.finditer(sentence):
        number = _ORDINALS[match.group(1).lower()]
        if number <= len(shown) and shown[number - 1] is not None:
            found.append((match.start(), shown[number - 1]))
    return sorted(found, key=lambda pair: pair[0])
