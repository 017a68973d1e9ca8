"""The recommendation scorer: cold start, stock, reasons, exploration, feedback, the simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli import main
from retrieval.catalog import Product
from retrieval.events import EventStore, FeedbackEvent
from retrieval.profile import build_profile
from retrieval.ranking import Candidate, ProductPosteriors, RankRequest, Scorer
from retrieval.simulator import reactions


def product(pid: str, **fields) -> Product:
    defaults = {"title": f"Product {pid}", "category": "Shoes", "brand": "Stride", "price": 80}
    return Product(id=pid, **{**defaults, **fields})


def candidates(*products: Product) -> list[Candidate]:
    """Recall order = argument order (first is most relevant)."""
    return [Candidate(p, relevance=1.0 / (60 + i)) for i, p in enumerate(products)]


def ids(ranked) -> list[str]:
    return [r.product.id for r in ranked]


def test_with_no_data_a_titles_only_catalog_keeps_the_recall_order():
    items = [Product(id=str(i), title=f"Item {i}") for i in range(8)]

    ranked = Scorer(seed=0).rank(candidates(*items), explore=False)

    assert ids(ranked) == [str(i) for i in range(8)]


def test_out_of_stock_products_are_never_shown_even_when_popular():
    posteriors = ProductPosteriors()
    posteriors.update("gone", impressions=100, positives=90)
    scorer = Scorer(posteriors=posteriors, exploration=3.0, seed=0)
    items = candidates(product("gone", in_stock=False), product("a"), product("b"))

    for _ in range(50):
        assert "gone" not in ids(scorer.rank(items, explore=True))


def test_reasons_say_why_a_product_is_recommended():
    red = product("red", attributes={"colour": "red"}, price=60, rating=4.8, review_count=900)
    profile = build_profile([("old", "purchase", 0.0)], {"old": product("old")}, now=0.0)

    ranked = Scorer(seed=0).rank(
        candidates(red), RankRequest(colour=["Red"], price_max=100), profile, explore=False
    )

    assert [r.to_dict() for r in ranked[0].reasons] == [
        {"code": "matches_colour", "text": "matches colour: red"},
        {"code": "within_budget", "text": "within your budget"},
        {"code": "liked_brand", "text": "you liked Stride before"},
        {"code": "liked_category", "text": "you often look at Shoes"},
        {"code": "your_price_range", "text": "in your usual price range"},
        {"code": "highly_rated", "text": "rated 4.8 by shoppers"},
    ]
    assert set(ranked[0].features) >= {"relevance", "price_fit", "rating", "ctr", "affinity_brand"}


def test_a_new_shopper_is_served_from_the_request_alone():
    cheap = product("cheap", price=40)
    dear = product("dear", price=400)

    ranked = Scorer(seed=0).rank(
        candidates(dear, cheap), RankRequest(price_max=100), profile=None, explore=False
    )

    assert ids(ranked) == ["cheap", "dear"]


def test_history_personalises_the_order():
    items = [product("s1", brand="Stride"), product("p1", brand="Peak")]
    profile = build_profile(
        [("old", "like", 0.0), ("old2", "purchase", 0.0)],
        {"old": product("old", brand="Peak"), "old2": product("old2", brand="Peak")},
        now=0.0,
    )

    assert ids(Scorer(seed=0).rank(candidates(*items), explore=False)) == ["s1", "p1"]
    assert ids(Scorer(seed=0).rank(candidates(*items), profile=profile, explore=False)) == [
        "p1",
        "s1",
    ]


def test_exploration_gives_a_new_product_a_fair_chance_and_greedy_does_not():
    posteriors = ProductPosteriors(prior_mean=0.1)
    for pid in ("w1", "w2", "w3"):
        posteriors.update(pid, impressions=40, positives=8)  # proven winners: 20%
    items = [Candidate(product(pid), relevance=1.0) for pid in ("w1", "w2", "w3", "new")]

    def shown_on_top(exploration: float) -> int:
        scorer = Scorer(posteriors=posteriors, exploration=exploration, seed=1)
        return sum(ids(scorer.rank(items, k=1, explore=True))[0] == "new" for _ in range(300))

    assert shown_on_top(0.0) == 0
    assert 5 < shown_on_top(1.0) < 150


def test_clicks_learnt_online_lift_a_product():
    posteriors = ProductPosteriors()
    scorer = Scorer(posteriors=posteriors, seed=0)
    items = [Candidate(product(pid), relevance=1.0) for pid in ("a", "b")]
    assert ids(scorer.rank(items, explore=False))[0] == "a"

    posteriors.update("b", impressions=30, positives=12)

    assert ids(scorer.rank(items, explore=False))[0] == "b"


def test_a_flood_of_dislikes_from_one_shopper_does_not_bury_a_product(tmp_path):
    store = EventStore(tmp_path / "events.sqlite", known_products=lambda ids: set(ids))
    flood = [
        FeedbackEvent("dislike", "hit", session_id="s-troll", shopper_id="troll", ts=float(i))
        for i in range(10_000)
    ]
    fans = [
        FeedbackEvent(kind, "hit", session_id=f"s{i}", shopper_id=f"fan{i}", ts=1.0)
        for i in range(20)
        for kind in ("impression", "click")
    ]
    store.record_many(flood + fans)
    posteriors = ProductPosteriors()
    posteriors.load(store.product_stats())
    items = [Candidate(product(pid), relevance=1.0) for pid in ("other", "hit")]

    assert ids(Scorer(posteriors=posteriors, seed=0).rank(items, explore=False))[0] == "hit"
    store.close()


def test_invalid_settings_are_refused_with_clear_messages():
    with pytest.raises(ValueError, match="unknown feature 'colour_match'"):
        Scorer({"colour_match": 1.0})
    with pytest.raises(ValueError, match="exploration must be >= 0, but got -1"):
        Scorer(exploration=-1)
    with pytest.raises(ValueError, match=r"prior_mean must be in \(0, 1\), but got 2"):
        ProductPosteriors(prior_mean=2)


def test_ranked_search_equals_hybrid_on_a_titles_only_catalog(catalog):
    catalog.ingest_products([Product(id=str(i), title=t) for i, t in enumerate(TITLES)])

    for query in ("running shoes", "coffee", "waterproof jacket"):
        hybrid = [h.product.id for h in catalog.search(query, k=5, system="hybrid")]
        ranked = [h.product.id for h in catalog.search(query, k=5, system="ranked")]
        assert ranked == hybrid


TITLES = [
    "Road running shoes",
    "Trail running shoes",
    "Espresso coffee machine",
    "Coffee grinder",
    "Waterproof rain jacket",
    "Down jacket",
    "Yoga mat",
    "Running socks",
]


def test_bench_scorer_prints_the_documented_shape_and_a_plot(tmp_path):
    plot = tmp_path / "curves.png"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "scorer",
            "--sessions",
            "300",
            "--shoppers",
            "40",
            "--products",
            "600",
            "--seed",
            "0",
            "--json",
            "--plot",
            str(plot),
            "--data-dir",
            str(tmp_path),
        ],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"policies", "personalization"}
    assert set(report["policies"]) == {"static", "greedy", "thompson"}
    for metrics in report["policies"].values():
        assert set(metrics) == {"ctr", "regret", "ndcg@10"}
    assert set(report["personalization"]) == {"ndcg@10_with_history", "ndcg@10_without_history"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reasons_state_knowledge_not_exploration_draws():
    day = 86_400.0
    old = [Candidate(product(f"o{i}"), relevance=1.0, added_at=0.0) for i in range(5)]
    fresh = Candidate(product("fresh"), relevance=1.0, added_at=40 * day)
    scorer = Scorer(exploration=1.0, seed=3)

    for _ in range(20):
        ranked = scorer.rank([*old, fresh], explore=True, now=41 * day)
        codes = {r.product.id: [reason.code for reason in r.reasons] for r in ranked}
        assert codes["fresh"] == ["new_arrival"]
        assert all(codes[f"o{i}"] == [] for i in range(5))  # nothing learnt: no "popular"


def test_a_catalog_imported_at_once_has_no_new_arrivals():
    items = [Candidate(product(f"p{i}"), relevance=1.0, added_at=100.0) for i in range(4)]

    ranked = Scorer(seed=0).rank(items, explore=False, now=200.0)

    assert all(r.reasons == [] for r in ranked)


def test_simulated_shoppers_like_buy_and_dismiss_by_their_taste():
    rng = np.random.default_rng(0)

    def share(kind: str, taste: float, examined: bool, clicked: bool) -> float:
        return np.mean([kind in reactions(taste, examined, clicked, rng) for _ in range(4000)])

    assert share("like", 2.0, True, True) > 3 * share("like", 0.0, True, True) > 0
    assert share("purchase", 2.0, True, True) > 3 * share("purchase", 0.0, True, True) > 0
    assert share("dislike", -1.5, True, False) > 2 * share("dislike", 0.0, True, False) > 0
    assert share("like", 2.0, True, False) == share("dislike", -3.0, False, False) == 0
    assert reactions(0.0, True, True, rng)[0] == "click"
