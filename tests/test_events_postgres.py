"""Feedback events in PostgreSQL (retrieval/events.py with a `database_url`): the answers SQLite
gives for the same events, one event log shared by several workers, and old SQLite files."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.events import POSITIVE, EventStore, FeedbackEvent
from tests.test_events import (  # noqa: F401  (the SQLite tests of a `store`, run again here)
    CATALOG,
    DAY,
    NOW,
    known,
    test_a_flood_from_one_shopper_counts_once,
    test_a_repeated_event_is_stored_once,
    test_delete_shopper_removes_their_events_and_nothing_else,
    test_interactions_follow_the_shopper_across_sessions_newest_first,
    test_invalid_events_are_refused_with_the_bad_value,
    test_one_shopper_weighs_at_most_the_cap_on_one_product,
    test_unknown_products_are_rejected_and_good_events_in_the_batch_kept,
)

KINDS = ("impression",) * 3 + POSITIVE + ("dislike",)  # listings are shown most
SHOPPERS = ("u1", "u2", "u3", None, None)
SESSIONS = ("s1", "s2", "s3", "s4", "s5")


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    """The `store` of tests/test_events.py, on PostgreSQL."""
    events = EventStore(database_url, known_products=known)
    yield events
    events.close()


def shopping(seed: int, count: int) -> list[FeedbackEvent]:
    """`count` events of a few shoppers and anonymous sessions over three days: listings shown
    (with features, ranks and arms), reactions to them, retried requests and a stray product."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        kind = rng.choice(KINDS)
        shown = kind == "impression"
        events.append(
            FeedbackEvent(
                kind,
                rng.choice([*sorted(CATALOG), "ghost"] if n % 50 == 7 else sorted(CATALOG)),
                rng.choice(SESSIONS),
                shopper_id=rng.choice(SHOPPERS),
                event_id=f"e{rng.randrange(count)}" if rng.random() < 0.2 else None,
                ts=NOW + rng.randrange(0, int(3 * DAY), 600) + rng.choice((0.0, 0.25, 10.5)),
                position=rng.choice((0, 1, 2, None)) if shown else None,
                features={"relevance": rng.random()} if shown and rng.random() < 0.7 else None,
                arm=rng.choice(("control", "bandit", None)) if shown else None,
            )
        )
    return events


def rounded(stats: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Product statistics to 9 digits: the two databases may add the shares in another order."""
    return {
        pid: (round(shown, 9), round(positives, 9)) for pid, (shown, positives) in stats.items()
    }


def everything_read(store: EventStore) -> dict[str, object]:
    """What every reader of the store sees: the admin's counts, the scorer's statistics and
    training rows, and each shopper's and session's history."""
    start, end = NOW - DAY, NOW + 4 * DAY
    return {
        "count": store.count(),
        "counts": store.counts(start, end),
        "counts of the first day": store.counts(NOW, NOW + DAY),
        "daily_counts": store.daily_counts(start, end),
        "arm_counts": store.arm_counts(start, end),
        "impressions_by_product": store.impressions_by_product(start, end),
        "product_stats": rounded(store.product_stats()),
        "product_stats of two": rounded(store.product_stats(["p2", "p3", "ghost"])),
        "product_stats of none": store.product_stats([]),
        "training_rows": store.training_rows(),
        "training_rows since": store.training_rows(since=NOW + DAY),
        "interactions": [
            store.interactions(shopper_id=shopper, session_id=session, limit=limit)
            for shopper in (*SHOPPERS[:3], None)
            for session in (*SESSIONS, None)
            for limit in (500, 3)
            if shopper or session
        ],
        "last_shown": [store.last_shown(session) for session in (*SESSIONS, "s6")],
    }


def test_postgresql_answers_every_read_as_sqlite_does(tmp_path: Path, database_url: str) -> None:
    sqlite = EventStore(tmp_path / "events.sqlite", known_products=known)
    postgres = EventStore(database_url, known_products=known)
    batches = [shopping(seed, 300) for seed in range(3)]
    # A flood of one shopper's impressions (capped per product and in the training weight),
    # then a listing where one product has no rank: it is listed first by both databases.
    shown = {"relevance": 0.5}
    flood = [FeedbackEvent("impression", "p1", "s6", "bot", ts=NOW + i, features=shown)
             for i in range(80)]  # fmt: skip
    listing = [FeedbackEvent("impression", pid, "s6", "bot", ts=NOW + 80, position=rank,
                             features=shown)
               for pid, rank in (("p2", 1), ("p3", None), ("p1", 0))]  # fmt: skip
    batches.append(flood + listing)
    reports = []
    for store in (sqlite, postgres):
        reports.append([store.record_many(batch) for batch in batches])
        assert not store.record(batches[0][1])  # sent again: a duplicate
    assert reports[0] == reports[1]
    first = reports[0][0]
    assert first.stored and first.duplicates and first.rejected  # every outcome was tried
    read = everything_read(sqlite)
    assert read == everything_read(postgres)
    assert read["training_rows"] and read["arm_counts"] and len(read["daily_counts"]) >= 3

    assert sqlite.delete_shopper("u1", ["s5"]) == postgres.delete_shopper("u1", ["s5"]) > 0
    assert everything_read(sqlite) == everything_read(postgres)
    sqlite.close()
    postgres.close()


def test_an_event_recorded_by_one_worker_counts_in_another(database_url: str) -> None:
    # Two workers starting at once on a new database: one makes the schema, the other waits.
    workers: list[EventStore] = []
    starting = [
        threading.Thread(target=lambda: workers.append(EventStore(database_url))) for _ in range(2)
    ]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    one, other = workers
    assert one.record(FeedbackEvent("impression", "p1", "s1", shopper_id="u1", ts=NOW))
    assert one.record(FeedbackEvent("like", "p1", "s1", shopper_id="u1", ts=NOW + 1))
    assert other.interactions(shopper_id="u1") == [
        ("p1", "like", NOW + 1),
        ("p1", "impression", NOW),
    ]
    assert other.product_stats() == {"p1": (1.0, 1.0)}
    # The same like sent to the other worker (a retried request) is the same like.
    assert not other.record(FeedbackEvent("like", "p1", "s1", shopper_id="u1", ts=NOW + 5))
    assert other.delete_shopper("u1") == 2 and one.count() == 0
    one.close()
    other.close()


def test_a_reaction_sent_to_two_workers_at_once_is_stored_once(database_url: str) -> None:
    workers = [EventStore(database_url), EventStore(database_url)]
    clicks = [FeedbackEvent("click", f"p{i}", "s1", ts=NOW + i * 100) for i in range(100)]
    reports = []
    ready = threading.Barrier(2)

    def send(worker: EventStore, ts_offset: float) -> None:
        ready.wait()
        retried = [
            FeedbackEvent(c.type, c.product_id, c.session_id, ts=c.ts + ts_offset) for c in clicks
        ]
        reports.append(worker.record_many(retried))

    threads = [
        threading.Thread(target=send, args=(w, offset))
        for w, offset in zip(workers, (0.0, 1.0), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.stored for r in reports) == sum(r.duplicates for r in reports) == 100
    assert workers[0].count() == 100
    for worker in workers:
        worker.close()


def test_an_events_file_from_before_ranking_experiments_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE events (rid INTEGER PRIMARY KEY, event_id TEXT UNIQUE, type TEXT NOT NULL,"
        " product_id TEXT NOT NULL, session_id TEXT NOT NULL, shopper_id TEXT, ts REAL NOT NULL,"
        " position INTEGER, features TEXT, request TEXT);"
        " INSERT INTO events (type, product_id, session_id, ts)"
        f" VALUES ('click', 'p1', 's1', {NOW});"
    )
    old.close()
    for _ in range(2):  # the first opening adds the arm column, the second finds it
        store = EventStore(path)
        store.record(FeedbackEvent("impression", "p2", "s1", ts=NOW + 1, arm="control"))
        assert store.arm_counts(NOW, NOW + 2) == {"control": {"click": 1, "impression": 1}}
        assert store.interactions(session_id="s1")[-1] == ("p1", "click", NOW)
        store.close()
