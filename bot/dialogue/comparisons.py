"""Comparison replies computed from the records: which product is cheaper, which is better
rated, which lists a feature asked about ("which one is waterproof?", and of one product,
"is it waterproof?"), as sentences filled
from `prompts/comparisons.toml`. A small LM asked to compare numbers names the wrong product
("A is rated 3.6 and B is rated 3.9, so A has the better reviews"); here the records decide
and the templates only phrase it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.dialogue.grounding import money, shown_title
from bot.dialogue.products import has_feature
from bot.prompts import prompt_table, render

_ABOUT_PRICE = re.compile(r"\b(?:cheap\w*|price\w*|cost\w*|expensive|afford\w*|budget)\b", re.I)
_ABOUT_RATING = re.compile(r"\b(?:rat\w+|review\w*|better|best|stars?|popular|good)\b", re.I)
# What no record states, so no comparison can settle: "which one is lightest?"
_UNRECORDED = re.compile(
    r"\b(?:light|heav|sturd|warm|quiet|loud|comf|durab|strong|fast|small|bigg|larg|soft)"
    r"(?:er|est|ier|iest)\b|\bmore (?:durable|comfortable|reliable)\b|\bbetter (?:quality|made)\b",
    re.I,
)
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
    if not features and (unknown := _UNRECORDED.search(question)):
        sentences = [render(texts["no_measure"], quality=unknown.group().lower())]
        return " ".join(sentences + ([texts["table"]] if len(products) == 2 else []))
    price, rating = _price_sentence(products, texts), _rating_sentence(products, texts)
    if _ABOUT_REVIEWS.search(question):
        rating = _reviews_sentence(products, texts)
    about_price, about_rating = _ABOUT_PRICE.search(question), _ABOUT_RATING.search(question)
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
    if len(products) == 2:
        sentences.append(texts["table"])
    return " ".join(sentences)


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
