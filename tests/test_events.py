"""Feedback events in SQLite (retrieval/events.py) and shopper profiles (retrieval/profile.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.catalog import Product
from retrieval.events import EventStore, FeedbackEvent, InvalidEvent, UnknownProduct
from retrieval.profile import build_profile

CATALOG = {"p1", "p2", "p3"}
DAY = 86_400.0
NOW = 1_700_000_000.0


def known(ids):
    return {pid for pid in ids if pid in CATALOG}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    events = EventStore(tmp_path / "events.sqlite", known_products=known)
    yield events
    events.close()


def test_recorded_event_is_readable_from_a_second_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    writer = EventStore(path)
    reader = EventStore(path)
    assert writer.record(FeedbackEvent("like", "p1", "s1", shopper_id="u1", ts=NOW))
    assert reader.interactions(shopper_id="u1") == [("p1", "like", NOW)]
    writer.close()
    reader.close()


def test_unknown_products_are_rejected_and_good_events_in_the_batch_kept(
    store: EventStore,
) -> None:
    report = store.record_many(
        [
            FeedbackEvent("click", "p1", "s1", ts=NOW),
            FeedbackEvent("click", "ghost", "s1", ts=NOW),
            FeedbackEvent("sneeze", "p2", "s1", ts=NOW),
            FeedbackEvent("like", "p2", "s1", ts=NOW),
        ]
    )
    assert (report.stored, report.duplicates) == (2, 0)
    assert report.rejected[0] == (1, "unknown product id 'ghost'")
    assert report.rejected[1][0] == 2 and "'sneeze'" in report.rejected[1][1]
    assert store.interactions(session_id="s1") == [("p2", "like", NOW), ("p1", "click", NOW)]
    with pytest.raises(UnknownProduct, match="unknown product id 'ghost'"):
        store.record(FeedbackEvent("click", "ghost", "s1"))
    assert store.count() == 2


def test_a_repeated_event_is_stored_once(store: EventStore) -> None:
    event = FeedbackEvent("add_to_cart", "p1", "s1", event_id="e-1", ts=NOW)
    assert store.record(event) is True
    assert store.record(FeedbackEvent("add_to_cart", "p1", "s1", event_id="e-1")) is False
    report = store.record_many([event, event])
    assert (report.stored, report.duplicates) == (0, 2)
    # Without an event_id, an identical row is the duplicate.
    same = FeedbackEvent("click", "p2", "s1", ts=NOW)
    assert store.record_many([same, same]).stored == 1
    assert store.count() == 2


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (FeedbackEvent("sneeze", "p1", "s1"), "event type must be one of .* but got 'sneeze'"),
        (FeedbackEvent("click", "p1", ""), "session_id must be a non-empty string, but got ''"),
        (FeedbackEvent("click", "p1", "s\x00"), "session_id must not contain control"),
        (
            FeedbackEvent("impression", "p1", "s1", features={"price_fit": math.nan}),
            "feature 'price_fit' must be a finite number, but got nan",
        ),
        (FeedbackEvent("click", "p1", "s1", ts=math.inf), "ts must be a finite number"),
    ],
)
def test_invalid_events_are_refused_with_the_bad_value(
    store: EventStore, event: FeedbackEvent, message: str
) -> None:
    with pytest.raises(InvalidEvent, match=message):
        store.record(event)
    assert store.count() == 0


def test_a_flood_from_one_shopper_counts_once(store: EventStore) -> None:
    flood = [
        FeedbackEvent("dislike", "p1", f"s{i % 7}", shopper_id="troll", ts=NOW + i)
        for i in range(10_000)
    ]
    report = store.record_many(flood)
    assert report.stored + report.duplicates == 10_000
    assert report.duplicates > 7_000  # the same dislike within 30 s is stored once
    for i in range(20):
        store.record_many(
            [
                FeedbackEvent("impression", "p1", f"t{i}", shopper_id=f"u{i}", ts=NOW),
                FeedbackEvent("click", "p1", f"t{i}", shopper_id=f"u{i}", ts=NOW + 1),
            ]
        )
    assert store.product_stats(["p1"]) == {"p1": (21.0, 20.0)}


def test_one_shopper_weighs_at_most_the_cap_on_one_product(store: EventStore) -> None:
    kinds = ["impression", "click", "like", "add_to_cart", "purchase", "dislike"]
    store.record_many([FeedbackEvent(k, "p2", "s1", shopper_id="u1", ts=NOW) for k in kinds])
    store.record(FeedbackEvent("impression", "p3", "anon", ts=NOW))
    impressions, positives = store.product_stats()["p2"]
    assert impressions == 3.0 and positives == pytest.approx(3.0 * 4 / 5)
    assert store.product_stats(["p3", "p1"]) == {"p3": (1.0, 0.0)}


def test_training_rows_label_impressions_and_cap_one_shoppers_weight(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    features = {"relevance": 0.5}
    shown = [
        FeedbackEvent(
            "impression", f"b{i}", "bot-session", shopper_id="bot", ts=NOW + i, features=features
        )  # fmt: skip
        for i in range(200)
    ]
    store.record_many(shown)
    store.record_many(
        [
            FeedbackEvent("impression", "p1", "s1", ts=NOW, features=features),
            FeedbackEvent("click", "p1", "s1", ts=NOW + 1),
            FeedbackEvent("impression", "p2", "s1", ts=NOW, features=features),
            FeedbackEvent("dislike", "p2", "s1", ts=NOW + 1),
            FeedbackEvent("impression", "p3", "s1", ts=NOW, features=features),
            FeedbackEvent("impression", "p3", "s1", ts=NOW + 5, features=features),
            FeedbackEvent("like", "p3", "s1", ts=NOW + 6),
            FeedbackEvent("impression", "p1", "s2", ts=NOW),  # no features: not a row
        ]
    )
    rows = store.training_rows()
    bot = [row for row in rows if row[0] == features and row[2] < 1.0]
    assert len(bot) == 200 and sum(row[2] for row in bot) == pytest.approx(50.0)
    session = [(label, weight, ts) for _, label, weight, ts in rows if weight == 1.0]
    # p1 clicked: 1; p2 disliked: 0; p3 shown twice, liked after the second showing: 0 then 1.
    assert sorted(session) == [(0, 1.0, NOW), (0, 1.0, NOW), (1, 1.0, NOW), (1, 1.0, NOW + 5)]
    assert [row[3] for row in store.training_rows(since=NOW + 199)] == [NOW + 199]
    store.close()


def test_delete_shopper_removes_their_events_and_nothing_else(store: EventStore) -> None:
    store.record_many(
        [
            FeedbackEvent("impression", "p1", "s1", ts=NOW),  # before signing in
            FeedbackEvent("like", "p1", "s1", shopper_id="u1", ts=NOW + 1),
            FeedbackEvent("click", "p2", "s9", shopper_id="u1", ts=NOW + 2),
            FeedbackEvent("like", "p1", "s2", shopper_id="u2", ts=NOW),
            FeedbackEvent("click", "p3", "anon", ts=NOW),
        ]
    )
    assert store.delete_shopper("u1") == 3
    assert store.interactions(shopper_id="u1") == []
    assert store.interactions(session_id="s1") == []
    assert store.interactions(shopper_id="u2") == [("p1", "like", NOW)]
    assert store.interactions(session_id="anon") == [("p3", "click", NOW)]
    assert store.count() == 2


def test_interactions_follow_the_shopper_across_sessions_newest_first(
    store: EventStore,
) -> None:
    store.record_many(
        [
            FeedbackEvent("click", "p1", "s1", shopper_id="u1", ts=NOW),
            FeedbackEvent("purchase", "p2", "s2", shopper_id="u1", ts=NOW + 10),
            FeedbackEvent("like", "p3", "s3", shopper_id="u2", ts=NOW + 5),
        ]
    )
    assert store.interactions(shopper_id="u1") == [
        ("p2", "purchase", NOW + 10),
        ("p1", "click", NOW),
    ]
    assert store.interactions(shopper_id="u1", limit=1) == [("p2", "purchase", NOW + 10)]


PRODUCTS = {
    p.id: p
    for p in [
        Product(id="shoe1", title="Trail runner", category="Shoes", brand="Acme", price=80),
        Product(id="shoe2", title="Road runner", category="Shoes", brand="Acme", price=100),
        Product(id="hat1", title="Sun hat", category="Hats", brand="Brim", price=15),
        Product(id="bag1", title="Tote", category="Bags", brand="Carry", price=300),
    ]
}


def test_profile_likes_and_dislikes_categories_brands_and_prices() -> None:
    interactions = [
        ("shoe1", "purchase", NOW - DAY),
        ("shoe2", "like", NOW - 2 * DAY),
        ("shoe2", "click", NOW - 2 * DAY),
        ("hat1", "dislike", NOW - DAY),
        ("bag1", "impression", NOW),
        ("gone", "like", NOW),  # no longer in the catalog
    ]
    profile = build_profile(interactions, PRODUCTS, now=NOW)
    assert profile.categories["shoes"] > 0.9 and profile.brands["acme"] > 0.9
    assert profile.categories["hats"] < 0 and profile.brands["brim"] < 0
    assert -0.3 < profile.categories["bags"] < 0  # shown, not chosen: a mild doubt
    assert 80 <= profile.price_level <= 100
    assert profile.seen == {"shoe1", "shoe2", "hat1", "bag1", "gone"}
    assert profile.liked == {"shoe1", "shoe2", "gone"} and profile.disliked == {"hat1"}
    assert not profile.is_empty()


def test_profile_forgets_slowly_and_a_later_dislike_wins() -> None:
    fresh = build_profile([("hat1", "like", NOW)], PRODUCTS, now=NOW)
    old = build_profile([("hat1", "like", NOW - 60 * DAY)], PRODUCTS, now=NOW)
    assert fresh.categories["hats"] > old.categories["hats"] > 0
    changed = build_profile(
        [("hat1", "dislike", NOW), ("hat1", "click", NOW - 10)], PRODUCTS, now=NOW
    )
    assert changed.disliked == {"hat1"} and changed.liked == set()
    assert changed.price_level is None


def test_no_interactions_give_an_empty_profile() -> None:
    profile = build_profile([], PRODUCTS, now=NOW)
    assert profile.is_empty()
    assert (profile.categories, profile.brands, profile.price_level) == ({}, {}, None)
