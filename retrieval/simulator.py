"""Offline evaluation of ranking policies with simulated shoppers.

Each simulated shopper has hidden tastes: a few product types they shop for, brands they love
or avoid, and a price level. Each product has a hidden appeal that its catalog fields only
partly reveal. A session: a shopper asks for one of their product types, the policy ranks the
in-stock candidates and shows the first 5, and the shopper looks down them (less attentively
further down) and clicks with a probability set by their hidden tastes. Like the product's
UI, the simulated shopper gives more than clicks (`reactions`): after a click they may press
Like and may buy, the likelier the more they like the product; a card they looked at and
passed over they may dismiss with "Not for me", the likelier the less they like it. Each
product shown is logged as an impression, as the server logs them. The learning policies
learn from all of it as the product does: the shopper's profile takes every event, and each
click, like, purchase or dismissal nudges the weights as the server's online step does.

Policies compared on the same sessions:

    static      default weights, learns nothing
    greedy      learns product click rates and the shopper's profile; ranks by the mean
    thompson    learns the same; ranks by a posterior draw (explores)

Reported per policy: click-through (clicks per impression), cumulative regret (expected clicks
lost against the best possible ranking for that shopper) and nDCG@10 against the shopper's
true click probabilities. Personalisation: returning shoppers' requests ranked with and without
their history, by the learnt thompson model, scored against their hidden preferences.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.catalog import Product
from retrieval.learning import pairwise_step
from retrieval.profile import ShopperProfile, build_profile
from retrieval.ranking import Candidate, ProductPosteriors, RankRequest, Scorer

POLICIES = ("static", "greedy", "thompson")
SHOWN = 10
PROGRESS_EVERY = 100  # sessions between progress reports
PRIOR_MEAN = 0.05
PRIOR_STRENGTH = 10.0
ONLINE_WEIGHTS = True
BASE_LOGIT = -2.4  # an average product for an average shopper: ~8% click probability
BRAND_TASTE = 1.5  # log-odds a loved brand adds (an avoided one takes away)
# After a click on an average product: Like 1 time in 20, buy 1 time in 30; on one the shopper
# likes 2 log-odds more (a loved brand at their price, of good appeal): 1 in 4 and 1 in 6.
LIKE_LOGIT = -3.0
PURCHASE_LOGIT = -3.5
# An average product looked at and passed over is dismissed 1 time in 30 (1 in 9 for a brand
# the shopper avoids): "Not for me" is a button few press.
DISMISS_SHARE = 0.3
DISMISS_LOGIT = -2.0


@dataclass
class SimShopper:
    id: str
    types: list[str]
    brands: dict[str, float]
    price_level: float  # multiple of the product type's median price


@dataclass
class PolicyRun:
    clicks: int = 0
    impressions: int = 0
    regret: float = 0.0
    ndcg: list[float] = field(default_factory=list)
    regret_curve: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "ctr": round(self.clicks / max(self.impressions, 1), 4),
            "regret": round(self.regret, 2),
            "ndcg@10": round(float(np.mean(self.ndcg)) if self.ndcg else 0.0, 4),
        }


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def reactions(taste: float, examined: bool, clicked: bool, rng: np.random.Generator) -> list[str]:
    """What a shopper does with a product card beyond the impression, given their `taste`
    for it (see `ShopperSimulator.taste`): after a click they may press Like and may buy,
    the likelier the more they like it; a card they looked at and passed over they may
    dismiss with "Not for me", the likelier the less they like it."""
    if clicked:
        return [
            "click",
            *(["like"] if rng.random() < _sigmoid(taste + LIKE_LOGIT) else []),
            *(["purchase"] if rng.random() < _sigmoid(taste + PURCHASE_LOGIT) else []),
        ]
    if examined and rng.random() < DISMISS_SHARE * _sigmoid(-taste + DISMISS_LOGIT):
        return ["dislike"]
    return []


def examination(position: int) -> float:
    """Chance a shopper looks at the product in `position` (0-based) of the list."""
    return 1.0 / (1.0 + position) ** 0.7


def ndcg(gains_in_order: list[float], ideal_gains: list[float], k: int = SHOWN) -> float:
    def dcg(gains: list[float]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))

    best = dcg(sorted(ideal_gains, reverse=True))
    return dcg(gains_in_order) / best if best > 0 else 0.0


class ShopperSimulator:
    def __init__(
        self,
        products: list[Product],
        *,
        shoppers: int = 200,
        slots: int = 5,
        exploration: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.slots = slots  # product cards one reply shows
        self.exploration = exploration  # the thompson policy's sampling strength
        self.products = [p for p in products if p.price is not None]
        self.by_id = {p.id: p for p in self.products}
        self.by_type: dict[str, list[Product]] = defaultdict(list)
        for product in self.products:
            self.by_type[product.attributes.get("type", product.category or "other")].append(
                product
            )
        self.types = sorted(t for t, items in self.by_type.items() if len(items) >= 5)
        if len(self.types) < 3:
            raise ValueError("the simulator needs at least 3 product types with 5+ products")
        self.median_price = {
            t: float(np.median([p.price for p in self.by_type[t]])) for t in self.types
        }
        # Appeal the catalog only hints at: a little from the rating, mostly unseen.
        self.appeal = {
            p.id: 0.3 * ((p.rating or 3.8) - 3.8) + float(self.rng.normal(0, 0.9))
            for p in self.products
        }
        # Half the catalog is there from the start; the rest arrives during the first 60% of
        # the sessions, so a policy must keep trying new products to find the good ones.
        self.arrival = {
            p.id: 0.0 if self.rng.random() < 0.5 else float(self.rng.uniform(0, 0.6))
            for p in self.products
        }
        self.shoppers = [self._new_shopper(i) for i in range(shoppers)]

    def _new_shopper(self, number: int) -> SimShopper:
        """Three product types to shop for; loved and avoided brands among those types' makers."""
        # Demand is uneven, as in real stores: a few product types draw most of the traffic.
        popularity = 1.0 / np.arange(1, len(self.types) + 1)
        types = list(
            self.rng.choice(self.types, size=3, replace=False, p=popularity / popularity.sum())
        )
        makers = sorted({p.brand for t in types for p in self.by_type[t] if p.brand})
        picks = list(self.rng.permutation(makers))
        loved, avoided = picks[: max(1, len(picks) // 3)], picks[-max(1, len(picks) // 5) :]
        return SimShopper(
            id=f"shopper-{number}",
            types=types,
            brands={**{b: -BRAND_TASTE for b in avoided}, **{b: BRAND_TASTE for b in loved}},
            price_level=float(np.exp(self.rng.normal(0, 0.35))),
        )

    def taste(self, shopper: SimShopper, product: Product, wanted: str) -> float:
        """How much this shopper likes `product` when looking for `wanted`: log-odds above an
        average product for an average shopper (0)."""
        kind = product.attributes.get("type", product.category or "other")
        taste = self.appeal[product.id] + shopper.brands.get(product.brand or "", 0)
        target = self.median_price.get(kind, product.price) * shopper.price_level
        taste -= 1.2 * abs(math.log(max(product.price, 0.01) / max(target, 0.01)))
        if kind != wanted:
            taste -= 2.0
        return taste

    def click_probability(self, shopper: SimShopper, product: Product, wanted: str) -> float:
        return _sigmoid(BASE_LOGIT + self.taste(shopper, product, wanted))

    def candidates(self, wanted: str, progress: float = 1.0) -> list[Candidate]:
        """The recall for a request: the wanted type, plus a few neighbours from its category,
        among the products that have arrived by `progress` (0 to 1) of the run."""
        exact = [p for p in self.by_type[wanted] if self.arrival[p.id] <= progress]
        category = self.by_type[wanted][0].category
        near = [
            p
            for t in self.types
            if t != wanted
            for p in self.by_type[t]
            if p.category == category and self.arrival[p.id] <= progress
        ][:20]
        return [Candidate(p, relevance=1.0) for p in exact] + [
            Candidate(p, relevance=0.6) for p in near
        ]

    def draw_plan(self, sessions: int) -> list[tuple[int, int]]:
        """(shopper number, which of their product types they ask for) per session."""
        return [
            (int(self.rng.integers(len(self.shoppers))), int(self.rng.integers(3)))
            for _ in range(sessions)
        ]

    def run(self, sessions: int = 5000, progress: Callable[[int], None] | None = None) -> dict:
        """Play `sessions` sessions through every policy, with the same shoppers and requests;
        `progress(n)` is called as each policy finishes n more sessions."""
        plan = self.draw_plan(sessions)
        runs = {}
        learnt: dict[str, tuple[Scorer, dict]] = {}
        for number, policy in enumerate(POLICIES):
            runs[policy], learnt[policy] = self.play(
                policy, plan, seed=1000 + number, progress=progress
            )
        scorer, history = learnt["thompson"]
        with_history, without_history = self.personalisation(scorer, history)
        return {
            "sessions": sessions,
            "policies": {name: run.summary() for name, run in runs.items()},
            "personalization": {
                "ndcg@10_with_history": round(with_history, 4),
                "ndcg@10_without_history": round(without_history, 4),
            },
            "curves": {name: run.regret_curve for name, run in runs.items()},
        }

    def play(
        self,
        policy: str,
        plan: list[tuple[int, int]],
        seed: int,
        progress: Callable[[int], None] | None = None,
    ):
        """Play the `plan` with one policy: (its PolicyRun, (its scorer, each shopper's events))."""
        rng = np.random.default_rng(seed)
        scorer = Scorer(
            posteriors=ProductPosteriors(prior_mean=PRIOR_MEAN, prior_strength=PRIOR_STRENGTH),
            exploration=self.exploration if policy == "thompson" else 0.0,
            seed=seed,
        )
        history: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
        run = PolicyRun()
        for step, (who, interest) in enumerate(plan):
            if progress and step and step % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
            shopper = self.shoppers[who]
            wanted = shopper.types[interest]
            candidates = self.candidates(wanted, progress=step / len(plan))
            learning = policy != "static"
            profile = (
                build_profile(history[shopper.id], self.by_id, now=float(step))
                if learning and history[shopper.id]
                else None
            )
            ranked = scorer.rank(
                candidates, RankRequest(), profile, k=SHOWN, explore=policy == "thompson", now=0
            )
            ranking = [r.product.id for r in ranked]
            truth = {
                c.product.id: self.click_probability(shopper, c.product, wanted) for c in candidates
            }
            shown = ranking[: self.slots]
            expected = sum(examination(i) * truth[pid] for i, pid in enumerate(shown))
            best = sorted(truth.values(), reverse=True)[: self.slots]
            run.regret += sum(examination(i) * p for i, p in enumerate(best)) - expected
            run.ndcg.append(ndcg([truth[pid] for pid in ranking], list(truth.values())))
            features = {r.product.id: r.features for r in ranked[: self.slots]}
            for position, pid in enumerate(shown):
                examined = rng.random() < examination(position)
                clicked = examined and rng.random() < truth[pid]
                run.impressions += 1
                run.clicks += int(clicked)
                if not learning:
                    continue
                # a click counts against the chance the shopper looked there
                scorer.posteriors.update(pid, examination(position), float(clicked))
                taste = self.taste(shopper, self.by_id[pid], wanted)
                others = [f for other, f in features.items() if other != pid]
                for kind in ["impression", *reactions(taste, examined, clicked, rng)]:
                    history[shopper.id].append((pid, kind, step))
                    if kind == "dislike" and ONLINE_WEIGHTS:  # as the server does
                        for other in others:
                            scorer.weights = pairwise_step(scorer.weights, other, [features[pid]])
                    elif kind != "impression" and ONLINE_WEIGHTS:
                        scorer.weights = pairwise_step(scorer.weights, features[pid], others)
            if step % 50 == 49 or step == len(plan) - 1:
                run.regret_curve.append(round(run.regret, 3))
        if progress:
            progress(len(plan) % PROGRESS_EVERY or PROGRESS_EVERY)
        return run, (scorer, history)

    def personalisation(
        self, scorer: Scorer, history: dict, *, told_tastes: bool = False
    ) -> tuple[float, float]:
        """Mean nDCG@10 for returning shoppers' next requests, with vs without their history.

        With `told_tastes` the "with" side uses `told_profile` instead of the shopper's events:
        the most a profile could add to this scorer.
        """
        with_history, without_history = [], []
        for shopper in self.shoppers:
            events = history.get(shopper.id, [])
            if sum(1 for _, kind, _ in events if kind == "click") < 2:
                continue
            built = build_profile(events, self.by_id, now=float(len(events)))
            for wanted in shopper.types:
                profile = self.told_profile(shopper, wanted) if told_tastes else built
                candidates = self.candidates(wanted)
                truth = {
                    c.product.id: self.click_probability(shopper, c.product, wanted)
                    for c in candidates
                }
                for target, shopper_profile in (
                    (with_history, profile),
                    (without_history, None),
                ):
                    ranked = scorer.rank(candidates, None, shopper_profile, k=SHOWN, explore=False)
                    target.append(ndcg([truth[r.product.id] for r in ranked], list(truth.values())))
        if not with_history:
            return 0.0, 0.0
        return float(np.mean(with_history)), float(np.mean(without_history))

    def told_profile(self, shopper: SimShopper, wanted: str) -> ShopperProfile:
        """A profile told the shopper's hidden brand tastes and price level for `wanted`."""
        category = (self.by_type[wanted][0].category or "").lower()
        return ShopperProfile(
            brands={b.lower(): taste / BRAND_TASTE for b, taste in shopper.brands.items()},
            category_price_levels={category: self.median_price[wanted] * shopper.price_level},
            events=1,
        )


def plot_curves(curves: dict[str, list[float]], path: Path, every: int = 50) -> None:
    """Cumulative regret per policy against sessions, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, values in curves.items():
        xs = [min((i + 1) * every, (i + 1) * every) for i in range(len(values))]
        axis.plot(xs, values, label=name, linewidth=2)
    axis.set_xlabel("sessions")
    axis.set_ylabel("cumulative regret (expected clicks lost)")
    axis.set_title("Ranking policies in the shopper simulator")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
