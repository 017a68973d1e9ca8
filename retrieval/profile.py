"""What a shopper's history says about their taste, for the recommendation scorer.

A `ShopperProfile` is built from the shopper's feedback events (`EventStore.interactions`):
affinities for categories and brands, the price level they tend to buy at, and which
products they have seen, liked and disliked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from retrieval.catalog import Product
from retrieval.events import POSITIVE, SIGNAL

# Affinity = tanh(decayed signal / AFFINITY_SCALE): one fresh like gives tanh(2/3) = 0.58.
AFFINITY_SCALE = 3.0
SECONDS_PER_DAY = 86_400.0
USUAL_RATE_PRIOR_IMPRESSIONS = 10.0


@dataclass
class ShopperProfile:
    categories: dict[str, float] = field(default_factory=dict)  # lower-cased -> [-1, 1]
    brands: dict[str, float] = field(default_factory=dict)  # lower-cased -> [-1, 1]
    price_level: float | None = None  # typical price of products the shopper liked
    # the same per lower-cased category: a $20 t-shirt buyer may still buy $300 boots
    category_price_levels: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # every product interacted with
    liked: set[str] = field(default_factory=set)  # a positive event, not undone by a dislike
    disliked: set[str] = field(default_factory=set)  # the latest opinion was a dislike
    events: int = 0

    def is_empty(self) -> bool:
        return self.events == 0


def weighted_median(values: Sequence[tuple[float, float]]) -> float | None:
    """The value at half the total weight: [(10, 1), (20, 1), (90, 3)] -> 90."""
    total = sum(w for _, w in values)
    if total <= 0:
        return None
    running = 0.0
    for value, weight in sorted(values):
        running += weight
        if running >= total / 2:
            return value
    return None


def _affinities(
    signal: Mapping[str, float], shown: Mapping[str, float], usual: float
) -> dict[str, float]:
    """tanh((signal - expected signal for how often it was shown) / AFFINITY_SCALE) per key."""
    return {
        key: math.tanh((signal.get(key, 0.0) - shown.get(key, 0.0) * usual) / AFFINITY_SCALE)
        for key in set(signal) | set(shown)
    }


def build_profile(
    interactions: Sequence[tuple[str, str, float]],
    products: Mapping[str, Product],
    *,
    half_life_days: float = 30.0,
    now: float | None = None,
) -> ShopperProfile:
    """Summarise (product_id, type, ts) interactions, in any order, into a profile.

    Each (product, type) counts once, at its latest time, so repeated clicks on one product
    do not drown the rest; its SIGNAL weight halves every `half_life_days`. An affinity is the
    signal beyond what the shopper's usual rate predicts for how often that category or brand
    was shown, so a brand shown often and never chosen drifts negative. Products missing from
    `products` still count as seen, liked or disliked, but add nothing to the affinities or
    the price level.
    """
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be > 0, but got {half_life_days}")
    now = time.time() if now is None else now
    profile = ShopperProfile()
    latest: dict[tuple[str, str], float] = {}
    for product_id, kind, ts in interactions:
        if kind != "impression" and kind not in SIGNAL:
            continue
        profile.events += 1
        profile.seen.add(product_id)
        if kind != "impression" and ts >= latest.get((product_id, kind), -math.inf):
            latest[(product_id, kind)] = ts

    categories: dict[str, float] = {}
    brands: dict[str, float] = {}
    liking: dict[str, float] = {}  # product -> decayed positive signal
    last_opinion: dict[str, tuple[float, str]] = {}
    for (product_id, kind), ts in latest.items():
        if ts >= last_opinion.get(product_id, (-math.inf, ""))[0]:
            last_opinion[product_id] = (ts, kind)
        product = products.get(product_id)
        if product is None:
            continue
        age_days = max(0.0, now - ts) / SECONDS_PER_DAY
        weight = SIGNAL[kind] * 0.5 ** (age_days / half_life_days)
        if product.category:
            key = product.category.strip().lower()
            categories[key] = categories.get(key, 0.0) + weight
        if product.brand:
            key = product.brand.strip().lower()
            brands[key] = brands.get(key, 0.0) + weight
        if kind in POSITIVE:
            liking[product_id] = liking.get(product_id, 0.0) + weight

    for product_id, (_, kind) in last_opinion.items():
        (profile.disliked if kind == "dislike" else profile.liked).add(product_id)

    # Being shown a brand often and never choosing it says something too: each impression
    # expects the shopper's usual share of positive signal, and only the excess is affinity.
    shown_categories: dict[str, float] = {}
    shown_brands: dict[str, float] = {}
    shown_total = 0.0
    for product_id, kind, ts in interactions:
        product = products.get(product_id)
        if kind != "impression" or product is None:
            continue
        decay = 0.5 ** (max(0.0, now - ts) / SECONDS_PER_DAY / half_life_days)
        shown_total += decay
        for key, table in ((product.category, shown_categories), (product.brand, shown_brands)):
            if key:
                table[key.strip().lower()] = table.get(key.strip().lower(), 0.0) + decay
    # The shopper's usual positive signal per impression, smoothed so a short history
    # (a purchase or two, few impressions logged) does not expect too much of each showing.
    usual = sum(liking.values()) / (shown_total + USUAL_RATE_PRIOR_IMPRESSIONS)
    profile.categories = _affinities(categories, shown_categories, usual)
    profile.brands = _affinities(brands, shown_brands, usual)
    prices = [
        (products[pid].price, weight)
        for pid, weight in liking.items()
        if pid in profile.liked and products[pid].price is not None
    ]
    profile.price_level = weighted_median(prices)
    by_category: dict[str, list[tuple[float, float]]] = {}
    for pid, weight in liking.items():
        product = products[pid]
        if pid in profile.liked and product.price is not None and product.category:
            by_category.setdefault(product.category.strip().lower(), []).append(
                (product.price, weight)
            )
    profile.category_price_levels = {
        category: level
        for category, values in by_category.items()
        if (level := weighted_median(values)) is not None
    }
    return profile
