"""Answers computed from the records: which product is cheaper, which is better rated,
which lists a feature asked about ("which one is waterproof?", and of one product, "is it
waterproof?"), what one product's record gives for an attribute asked about ("what sizes
does it come in?"), as sentences filled from `prompts/comparisons.toml`. A small LM asked
to compare numbers names the wrong product ("A is rated 3.6 and B is rated 3.9, so A has
the better reviews"); here the records decide and the templates only phrase it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.dialogue.claims import unsaid_words
from bot.dialogue.grounding import money, plain_text, shown_title
from bot.dialogue.products import has_feature
from bot.prompts import prompt_table, render
from retrieval.catalog import MAX_ATTRIBUTE_CHARS

_ABOUT_PRICE = re.compile(r"\b(?:cheap\w*|price\w*|cost\w*|expensive|afford\w*|budget)\b", re.I)
_ABOUT_RATING = re.compile(r"\b(?:rat\w+|review\w*|better|best|stars?|popular|good)\b", re.I)
# What no record states, so no comparison can settle ("which one is lightest?"), by the
# measure the reply says the records lack: the word's stem, or the phrase.
_MEASURES = {
    "light": "weight", "heav": "weight", "sturd": "durability", "durab": "durability",
    "strong": "durability", "warm": "warmth", "quiet": "loudness", "loud": "loudness",
    "comf": "comfort", "comfortable": "comfort", "fast": "speed", "small": "size",
    "bigg": "size", "larg": "size", "soft": "softness", "reliable": "reliability",
    "durable": "durability",
    "quality": "quality", "made": "quality",
}  # fmt: skip
_UNRECORDED = re.compile(
    r"\b(light|heav|sturd|warm|quiet|loud|comf|durab|strong|fast|small|bigg|larg|soft)"
    r"(?:er|est|ier|iest)\b|\bmore (durable|comfortable|reliable)\b|\bbetter (quality|made)\b",
    re.I,
)
# Words that ask for a comparison, not about a thing its records might mention
_COMPARING = """compare comparing comparison difference differences between versus top two
    three four five first second third fourth fifth last both other others these those all
    them side against each option options product products item items ones pick choose
    suggest prefer rather worth think favorite favourite overall"""
_COMPARING_WORDS = frozenset(_COMPARING.split())
# How many reviews, not how good they are: "which has more reviews", "the most popular one"
_ABOUT_REVIEWS = re.compile(
    r"\b(?:more|most|fewer|fewest|number of|how many|lots of)\s+reviews\b"
    r"|\b(?:most|more)\s+(?:reviewed|popular)\b",
    re.I,
)


def compare_reply(products: Sequence[Any], question: str, features: Sequence[str] = ()) -> str:
    """Sentences comparing `products` (two or more records) on price and rating (on how
    many reviews, when it asks that), the one the question asks about first; both when it
    names neither. With `features` the question
    names ("which one is waterproof?"), which of them list each, and price or rating only
    when it asks about them too."""
    texts = prompt_table("comparisons.toml")
    table = [texts["table"]] if len(products) == 2 else []
    about_price, about_rating = _ABOUT_PRICE.search(question), _ABOUT_RATING.search(question)
    if not features and (unknown := _UNRECORDED.search(question)):
        measure = _MEASURES[next(word for word in unknown.groups() if word).lower()]
        return " ".join([render(texts["no_measure"], measure=measure), *table])
    unsaid = [w for w in unsaid_words(question, products) if w not in _COMPARING_WORDS]
    if not (features or about_price or about_rating) and unsaid:  # "do any have a rainfly"
        return " ".join([render(texts["no_mention"], words=" ".join(unsaid)), *table])
    price, rating = _price_sentence(products, texts), _rating_sentence(products, texts)
    if _ABOUT_REVIEWS.search(question):
        rating = _reviews_sentence(products, texts)
    if features:
        sentences = [_feature_sentence(products, feature, texts) for feature in features]
        sentences += [price] if about_price else []
        sentences += [rating] if about_rating else []
    elif about_price and not about_rating:
        sentences = [price]
    elif about_rating and not about_price:
        sentences = [rating]
    else:
        sentences = [price, rating]
    return " ".join([*sentences, *table])


def features_reply(product: Any, features: Sequence[str]) -> str:
    """Whether one product's record lists each of the `features` the question names ("is
    it waterproof?", "does the second one have pockets?"), a sentence each."""
    texts = prompt_table("comparisons.toml")
    return " ".join(
        render(
            texts["feature_yes" if has_feature(product, feature) else "feature_no"],
            feature=feature,
            **_values(product),
        )
        for feature in features
    )


# The words that ask for an attribute, by the attribute's name in the records; any other
# attribute is asked for by its own name ("how many burners", "what's the capacity").
ATTRIBUTE_WORDS = {
    "size": r"sizes?",
    "colour": r"colou?rs?",
    "material": r"made (?:of|from|out of)|materials?|fabric",
    "capacity": r"capacity|how (?:big|large|much does it hold)|litres?|liters?",
    "age": r"ages?|how old|years? old",
    "sleeps": r"how many (?:people|persons)|sleeps",
    "power": r"power|watts?|wattage|how powerful",
    "temperature rating": r"temperature|how (?:cold|warm)|rated (?:to|for)|degrees",
    "thickness": r"thickness|how thick",
    "width": r"width|how wide",
    "brightness": r"brightness|how bright|lumens",
    "skin type": r"skin types?",
}
_NOT_ASKED = frozenset({"type", "features", "use"})  # answered elsewhere, or no answer


def attribute_reply(product: Any, question: str) -> str | None:
    """What one product's record gives for each attribute the question asks about, by the
    words of `ATTRIBUTE_WORDS` or by the name of one of its own attributes ("what sizes
    does the first one come in?" -> its sizes; "how thick is it?" of headphones -> that its
    record gives none); None when it asks about none."""
    asked = []
    for name in dict.fromkeys([*ATTRIBUTE_WORDS, *(product.attributes or {})]):
        words = ATTRIBUTE_WORDS.get(name, re.escape(name))
        if name not in _NOT_ASKED and re.search(rf"\b(?:{words})\b", question, re.I):
            asked.append(name)
    if not asked:
        return None
    texts = prompt_table("comparisons.toml")
    attributes = product.attributes or {}
    return " ".join(
        render(
            texts["attribute" if attributes.get(name) else "attribute_none"],
            attribute=name,
            value=plain_text(str(attributes.get(name, "")), MAX_ATTRIBUTE_CHARS),
            **_values(product),
        )
        for name in asked
    )


def _values(product: Any) -> dict[str, str]:
    return {
        "name": shown_title(product),
        "price": money(product.price, product.currency),
        "rating": f"{product.rating:.1f}" if product.rating is not None else "",
        "reviews": str(product.review_count or 0),
    }


def _pair(first: Any, second: Any) -> dict[str, str]:
    other = {f"other_{key}": value for key, value in _values(second).items()}
    return {**_values(first), **other}


def _price_sentence(products: Sequence[Any], texts: dict[str, str]) -> str:
    if any(p.price is None for p in products):
        return texts["no_price"]
    low = min(p.price for p in products)
    cheapest = [p for p in products if p.price == low]
    if len(cheapest) == len(products):
        return render(texts["same_price"], **_values(cheapest[0]))
    if len(cheapest) > 1:
        names = " and ".join(shown_title(p) for p in cheapest)
        return render(texts["cheapest_several"], names=names, price=_values(cheapest[0])["price"])
    if len(products) == 2:
        other = next(p for p in products if p is not cheapest[0])
        return render(texts["cheaper"], **_pair(cheapest[0], other))
    return render(texts["cheapest"], **_values(cheapest[0]))


def _feature_sentence(products: Sequence[Any], feature: str, texts: dict[str, str]) -> str:
    listing = [p for p in products if has_feature(p, feature)]
    if len(listing) == len(products):
        return render(texts["feature_all"], feature=feature)
    if not listing:
        return render(texts["feature_none"], feature=feature)
    others = [p for p in products if p not in listing]
    return render(
        texts["feature_some"],
        feature=feature,
        names=" and ".join(shown_title(p) for p in listing),
        others=" and ".join(shown_title(p) for p in others),
    )


def _rating_sentence(products: Sequence[Any], texts: dict[str, str]) -> str:
    if any(p.rating is None for p in products):
        return texts["unrated"]
    high = max(round(p.rating, 1) for p in products)
    best = [p for p in products if round(p.rating, 1) == high]
    if len(best) == len(products):
        first, second = sorted(best, key=lambda p: -(p.review_count or 0))[:2]
        if len(products) == 2 and (first.review_count or 0) != (second.review_count or 0):
            return render(texts["same_rating"], **_pair(first, second))  # ties on rating
        return render(texts["same_rating_reviews"], **_values(first))
    if len(best) > 1:
        names = " and ".join(shown_title(p) for p in best)
        return render(texts["best_rated_several"], names=names, rating=_values(best[0])["rating"])
    if len(products) == 2:
        other = next(p for p in products if p is not best[0])
        return render(texts["better_rated"], **_pair(best[0], other))
    return render(texts["best_rated"], **_values(best[0]))


def _reviews_sentence(products: Sequence[Any], texts: dict[str, str]) -> str:
    most = max(p.review_count or 0 for p in products)
    leading = [p for p in products if (p.review_count or 0) == most]
    if len(leading) == len(products):
        return render(texts["same_reviews"], **_values(leading[0]))
    if len(leading) > 1:
        names = " and ".join(shown_title(p) for p in leading)
        return render(texts["most_reviews_several"], names=names, reviews=str(most))
    if len(products) == 2:
        other = next(p for p in products if p is not leading[0])
        return render(texts["more_reviews"], **_pair(leading[0], other))
    return render(texts["most_reviews"], **_values(leading[0]))
