"""The recommendation scorer: what the shopper sees first, and why.

Recall hands over candidates; `Scorer.rank` orders them by a weighted sum of explicit,
inspectable features per (shopper, product, request):

    relevance       hybrid recall score as a share of the best candidate's
    semantic        cosine similarity from the dense recall
    keyword         BM25 score as a share of the best candidate's
    slot_match      share of the requested category / brand / colour / size it matches
    price_fit       1 inside the asked price range, falling off outside; 0 when none asked
    rating          star rating shrunk toward the prior by review count, centred on 0
    popularity      log review count plus purchases, in [0, 1]
    recency         how much newer than the usual candidate (freshness halves in 30 days)
    ctr             learned click-through of this product (posterior), centred on the prior
    affinity_*      this shopper's liking of the category and brand, closeness to their price level

With no data at all only relevance and the catalog's own fields count, so a new shopper is
served from the request alone. Exploration uses Thompson sampling: each product's click rate
is a Beta posterior, and ranking uses a draw from it, so new and rarely shown products get a
fair chance while known losers sink. Out-of-stock products are never shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.catalog import Product
from retrieval.filters import slot_values
from retrieval.profile import ShopperProfile

FEATURES = (
    "relevance",
    "semantic",
    "keyword",
    "slot_match",
    "price_fit",
    "rating",
    "popularity",
    "recency",
    "ctr",
    "affinity_category",
    "affinity_brand",
    "affinity_price",
)

DEFAULT_WEIGHTS: dict[str, float] = {
    "relevance": 3.0,
    "semantic": 0.0,
    "keyword": 0.0,
    "slot_match": 0.3,
    "price_fit": 0.3,
    "rating": 0.15,
    "popularity": 0.1,
    "recency": 0.02,
    "ctr": 0.6,
    "affinity_category": 0.2,
    "affinity_brand": 1.0,
    "affinity_price": 0.3,
}

RATING_PRIOR = 3.8  # stars a product is assumed to have before its reviews say otherwise
RATING_PRIOR_REVIEWS = 10
RECENCY_HALF_LIFE_DAYS = 30.0


@dataclass
class Candidate:
    """A recalled product with the recall evidence (None when that system did not find it)."""

    product: Product
    relevance: float = 1.0
    semantic: float | None = None
    keyword: float | None = None
    added_at: float | None = None


@dataclass
class RankRequest:
    """What the shopper asked for, as soft preferences (hard filters apply at recall)."""

    category: list[str] = field(default_factory=list)
    brand: list[str] = field(default_factory=list)
    colour: list[str] = field(default_factory=list)
    size: list[str] = field(default_factory=list)
    price_min: float | None = None
    price_max: float | None = None

    def __post_init__(self) -> None:
        for name in ("category", "brand", "colour", "size"):
            setattr(self, name, slot_values(getattr(self, name)))


@dataclass
class Reason:
    code: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


@dataclass
class RankedProduct:
    product: Product
    score: float
    features: dict[str, float]
    reasons: list[Reason]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.product.summary(),
            "score": round(self.score, 6),
            "reasons": [r.to_dict() for r in self.reasons],
        }


class ProductPosteriors:
    """Beta(alpha, beta) click-rate posteriors per product, updated online.

    The prior says a product is clicked `prior_mean` of the times it is shown, with the weight
    of `prior_strength` impressions.
    """

    def __init__(self, prior_mean: float = 0.1, prior_strength: float = 10.0) -> None:
        if not 0 < prior_mean < 1:
            raise ValueError(f"prior_mean must be in (0, 1), but got {prior_mean}")
        self.alpha0 = prior_mean * prior_strength
        self.beta0 = (1 - prior_mean) * prior_strength
        self._counts: dict[str, list[float]] = {}

    def update(self, product_id: str, impressions: float = 1.0, positives: float = 0.0) -> None:
        counts = self._counts.setdefault(product_id, [0.0, 0.0])
        counts[0] += impressions
        counts[1] += min(positives, impressions) if impressions else positives

    def load(self, stats: Mapping[str, tuple[float, float]], *, replace: bool = True) -> None:
        """Set (impressions, positives) per product, e.g. from `EventStore.product_stats`;
        with `replace=False` only the products in `stats` change."""
        fresh = {pid: [float(i), float(p)] for pid, (i, p) in stats.items()}
        if replace:
            self._counts = fresh
        else:
            self._counts.update(fresh)

    def params(self, product_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        alpha = np.empty(len(product_ids))
        beta = np.empty(len(product_ids))
        for i, pid in enumerate(product_ids):
            shown, liked = self._counts.get(pid, (0.0, 0.0))
            alpha[i] = self.alpha0 + liked
            beta[i] = self.beta0 + max(shown - liked, 0.0)
        return alpha, beta

    @property
    def prior_mean(self) -> float:
        return self.alpha0 / (self.alpha0 + self.beta0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def checked_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """DEFAULT_WEIGHTS overridden by `weights`; unknown names and non-numbers are refused."""
    merged = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in DEFAULT_WEIGHTS:
            raise ValueError(f"unknown feature {name!r}; features are {', '.join(FEATURES)}")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"weight for {name} must be a finite number, but got {value!r}")
        merged[name] = float(value)
    return merged


class Scorer:
    """Orders candidates for one shopper and one request, with reasons for each product.

    `exploration` scales Thompson sampling: 0 ranks by the posterior mean (greedy), 1 by a
    posterior draw, more than 1 explores harder.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        *,
        posteriors: ProductPosteriors | None = None,
        exploration: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if exploration < 0:
            raise ValueError(f"exploration must be >= 0, but got {exploration}")
        self.weights = checked_weights(weights)
        self.posteriors = posteriors or ProductPosteriors()
        self.exploration = exploration
        self._rng = np.random.default_rng(seed)

    def features(
        self,
        candidates: Sequence[Candidate],
        request: RankRequest | None = None,
        profile: ShopperProfile | None = None,
        *,
        now: float | None = None,
    ) -> np.ndarray:
        """The feature matrix, one row per candidate, columns in FEATURES order (the click
        rate as known: its posterior mean)."""
        request = request or RankRequest()
        now = time.time() if now is None else now
        n = len(candidates)
        matrix = np.zeros((n, len(FEATURES)))
        if n == 0:
            return matrix
        col = {name: i for i, name in enumerate(FEATURES)}
        matrix[:, col["relevance"]] = _share_of_best([c.relevance for c in candidates])
        matrix[:, col["keyword"]] = _share_of_best([c.keyword or 0.0 for c in candidates])
        matrix[:, col["semantic"]] = [c.semantic or 0.0 for c in candidates]

        matrix[:, col["ctr"]] = self.click_lift([c.product.id for c in candidates])
        added = [c.added_at for c in candidates if c.added_at is not None]
        usual_age = now - float(np.median(added)) if added else 0.0

        for row, candidate in enumerate(candidates):
            product = candidate.product
            matrix[row, col["slot_match"]] = _slot_match(product, request)
            matrix[row, col["price_fit"]] = _price_fit(product.price, request)
            matrix[row, col["rating"]] = _shrunk_rating(product) - RATING_PRIOR
            matrix[row, col["popularity"]] = min(
                math.log1p(product.review_count or 0) / math.log1p(10_000), 1.0
            )
            if candidate.added_at is not None:  # newer than the usual candidate, decaying
                age = max(now - candidate.added_at, 0.0)
                matrix[row, col["recency"]] = max(
                    _freshness(age) - _freshness(max(usual_age, 0.0)), 0.0
                )
            if profile is not None and not profile.is_empty():
                category = (product.category or "").lower()
                brand = (product.brand or "").lower()
                matrix[row, col["affinity_category"]] = profile.categories.get(category, 0.0)
                matrix[row, col["affinity_brand"]] = profile.brands.get(brand, 0.0)
                matrix[row, col["affinity_price"]] = _price_closeness(
                    product.price, profile.category_price_levels.get(category, profile.price_level)
                )
        return matrix

    def click_lift(
        self, product_ids: Sequence[str], explore: bool = False, exploration: float | None = None
    ) -> np.ndarray:
        """Learnt click rate against the prior, in log-odds clipped to [-2, 2]; with `explore`,
        from a posterior draw scaled by `exploration` (Thompson sampling; default: the
        scorer's own strength)."""
        alpha, beta = self.posteriors.params(product_ids)
        rate = alpha / (alpha + beta)
        strength = self.exploration if exploration is None else exploration
        if explore and strength > 0:
            draw = self._rng.beta(alpha, beta)
            rate = rate + strength * (draw - rate)
        lift = _logit(rate) - _logit(np.array(self.posteriors.prior_mean))
        return np.clip(lift, -2.0, 2.0)

    def rank(
        self,
        candidates: Sequence[Candidate],
        request: RankRequest | None = None,
        profile: ShopperProfile | None = None,
        *,
        k: int | None = None,
        explore: bool = True,
        now: float | None = None,
        exploration: float | None = None,
    ) -> list[RankedProduct]:
        """The in-stock candidates, best first, each with its features and reasons.

        Features and reasons state what is known (the mean click rate); with `explore` the
        order uses a posterior draw of the click rate instead, scaled by `exploration` (a
        ranking experiment's arm; default: the scorer's own).
        """
        shown = [c for c in candidates if c.product.in_stock]
        matrix = self.features(shown, request, profile, now=now)
        vector = np.array([self.weights[name] for name in FEATURES])
        scoring = matrix
        if explore and len(shown):
            scoring = matrix.copy()
            scoring[:, FEATURES.index("ctr")] = self.click_lift(
                [c.product.id for c in shown], explore=True, exploration=exploration
            )
        scores = scoring @ vector if len(shown) else np.zeros(0)
        # Ties (e.g. a catalog of titles only) keep the recall order.
        order = sorted(range(len(shown)), key=lambda i: (-scores[i], i))[: k or len(shown)]
        ranked = []
        for i in order:
            features = dict(zip(FEATURES, matrix[i].round(4).tolist(), strict=True))
            ranked.append(
                RankedProduct(
                    shown[i].product,
                    float(scores[i]),
                    features,
                    explain(shown[i].product, features, request or RankRequest(), profile),
                )
            )
        return ranked


def _share_of_best(values: Sequence[float]) -> np.ndarray:
    """Each value as a share of the best candidate's (0 when none is positive)."""
    array = np.asarray(values, dtype=float)
    best = array.max()
    return array / best if best > 0 else np.zeros_like(array)


def _slot_match(product: Product, request: RankRequest) -> float:
    checks = []
    if request.category:
        checks.append((product.category or "").lower() in request.category)
    if request.brand:
        checks.append((product.brand or "").lower() in request.brand)
    if request.colour:
        checks.append(bool(set(request.colour) & set(product.colours)))
    if request.size:
        checks.append(bool(set(request.size) & set(product.sizes)))
    return sum(checks) / len(checks) if checks else 0.0


def _freshness(age_seconds: float) -> float:
    return 0.5 ** (age_seconds / 86_400 / RECENCY_HALF_LIFE_DAYS)


def _price_fit(price: float | None, request: RankRequest) -> float:
    if price is None or (request.price_min is None and request.price_max is None):
        return 0.0
    if request.price_max is not None and price > request.price_max:
        return max(1.0 - (price / request.price_max - 1.0) * 4, -1.0)
    if request.price_min is not None and price < request.price_min:
        return max(1.0 - (1.0 - price / max(request.price_min, 1e-9)) * 4, -1.0)
    return 1.0


def _price_closeness(price: float | None, level: float | None) -> float:
    """1 at the shopper's usual price, 0 at 3x (or a third) of it, down to -1 further away."""
    if price is None or level is None or price <= 0 or level <= 0:
        return 0.0
    return max(1.0 - abs(math.log(price / level)) / math.log(3), -1.0)


def _shrunk_rating(product: Product) -> float:
    if product.rating is None:
        return RATING_PRIOR
    reviews = product.review_count if product.review_count is not None else 0
    return (product.rating * reviews + RATING_PRIOR * RATING_PRIOR_REVIEWS) / (
        reviews + RATING_PRIOR_REVIEWS
    )


def explain(
    product: Product,
    features: Mapping[str, float],
    request: RankRequest,
    profile: ShopperProfile | None,
) -> list[Reason]:
    """Short, machine-readable reasons a shopper would accept, strongest first."""
    reasons: list[Reason] = []
    if request.colour and set(request.colour) & set(product.colours):
        colour = sorted(set(request.colour) & set(product.colours))[0]
        reasons.append(Reason("matches_colour", f"matches colour: {colour}"))
    if request.brand and (product.brand or "").lower() in request.brand:
        reasons.append(Reason("matches_brand", f"matches brand: {product.brand}"))
    if request.size and set(request.size) & set(product.sizes):
        size = sorted(set(request.size) & set(product.sizes))[0]
        reasons.append(Reason("matches_size", f"available in size {size.upper()}"))
    if features.get("price_fit", 0.0) >= 1.0:
        reasons.append(Reason("within_budget", "within your budget"))
    if profile is not None and not profile.is_empty():
        if features.get("affinity_brand", 0.0) >= 0.3:
            reasons.append(Reason("liked_brand", f"you liked {product.brand} before"))
        if features.get("affinity_category", 0.0) >= 0.3:
            reasons.append(Reason("liked_category", f"you often look at {product.category}"))
        if features.get("affinity_price", 0.0) >= 0.7:
            reasons.append(Reason("your_price_range", "in your usual price range"))
    if product.rating is not None and features.get("rating", 0.0) >= 0.4:
        reasons.append(Reason("highly_rated", f"rated {product.rating:.1f} by shoppers"))
    if features.get("ctr", 0.0) >= 0.7:
        reasons.append(Reason("popular_choice", "often chosen by shoppers"))
    if features.get("recency", 0.0) >= 0.3:
        reasons.append(Reason("new_arrival", "new arrival"))
    return reasons
