"""Shopper feedback events (impressions, clicks, likes, purchases) in one SQLite file, or in
a PostgreSQL database that every server worker shares (`database_url`).

Events feed the recommendation scorer three ways: per-product counts for Beta posteriors
(`product_stats`), a shopper's recent history for their profile (`interactions`), and labelled
impressions for training the scorer (`training_rows`). Every read guards against one shopper
flooding the store: a repeated event counts once, and no shopper weighs more than a fixed cap.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.database import POSTGRESQL, SQLITE, open_database
from retrieval.errors import RetrievalError
from retrieval.experiments import ARM_NAME

EVENT_TYPES = ("impression", "click", "like", "dislike", "add_to_cart", "purchase")
# How much each event says about the shopper's liking of a product.
SIGNAL = {"click": 1.0, "like": 2.0, "add_to_cart": 3.0, "purchase": 4.0, "dislike": -2.0}
POSITIVE = ("click", "like", "add_to_cart", "purchase")

MAX_ID_CHARS = 200
MAX_REQUEST_CHARS = 2_000
# Without an event_id, a reaction repeated this soon (same type, product, session and
# shopper) is the same reaction sent twice: a double click, a retried request. Impressions
# are written by the server once per showing, so they are not windowed.
REPEAT_WINDOW_S = 30.0
MAX_FEATURES = 200
# One shopper's (or anonymous session's) most impressions on one product in product_stats.
MAX_SHOPPER_IMPRESSIONS = 3.0
# One shopper's (or anonymous session's) most total weight in training_rows.
MAX_SHOPPER_TRAINING_WEIGHT = 50.0

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_POSITIVE_SQL = ", ".join(f"'{t}'" for t in POSITIVE)
# Who an event belongs to: the shopper when known, else the anonymous session.
_ACTOR_SQL = "COALESCE('u:' || shopper_id, 's:' || session_id)"
# Where the two databases' SQL differs: the larger and smaller of two values, a UTC day
# ("2026-12-01") of a time in seconds, "product_id is one of the ids in :ids", and the
# null-to-value function the events_identity index is written with (so the repeat check
# can search that index).
_DIALECT_SQL = {
    SQLITE: {
        "greatest": "MAX",
        "least": "MIN",
        "day": "date(ts, 'unixepoch')",
        "in_ids": "product_id IN (SELECT value FROM json_each(:ids))",
        "ifnull": "IFNULL",
    },
    POSTGRESQL: {
        "greatest": "GREATEST",
        "least": "LEAST",
        "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        "in_ids": "product_id = ANY(:ids)",
        "ifnull": "COALESCE",
    },
}
# Taken by a worker writing events to PostgreSQL, so that the repeat check of one worker
# sees what another is writing (a PostgreSQL advisory lock key).
_WRITE_LOCK = 0x5B0B_0002

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    rid INTEGER PRIMARY KEY,
    event_id TEXT UNIQUE,
    type TEXT NOT NULL,
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    shopper_id TEXT,
    ts REAL NOT NULL,
    position INTEGER,
    features TEXT,
    request TEXT,
    arm TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_identity
    ON events (type, product_id, session_id, IFNULL(shopper_id, ''), ts) WHERE event_id IS NULL;
CREATE INDEX IF NOT EXISTS events_by_shopper ON events (shopper_id, ts);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, product_id, type, ts);
CREATE INDEX IF NOT EXISTS events_by_product ON events (product_id, type);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, ts);
"""


class InvalidEvent(RetrievalError, ValueError):
    """An event fails validation; the message names the bad value."""


class UnknownProduct(InvalidEvent):
    """An event names a product the catalog does not hold."""


@dataclass
class FeedbackEvent:
    type: str
    product_id: str
    session_id: str
    shopper_id: str | None = None
    event_id: str | None = None  # client idempotency key: a repeated event_id is a duplicate
    ts: float | None = None  # seconds since the epoch; None means now
    position: int | None = None  # rank at which the product was shown (impressions)
    features: dict[str, float] | None = None  # scorer features at impression time
    request: str | None = None  # free text of the shopper's request
    arm: str | None = None  # the ranking experiment's arm that ranked it (impressions)


@dataclass
class RecordReport:
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in input, reason)


def _check_id(name: str, value: object, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{name} must be a non-empty string, but got {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise InvalidEvent(f"{name} must be at most {MAX_ID_CHARS} characters: {value[:40]!r}...")
    if _CONTROL.search(value):
        raise InvalidEvent(f"{name} must not contain control characters: {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _event_row(event: FeedbackEvent) -> tuple:
    """The validated event as a row for the events table; raises InvalidEvent."""
    if event.type not in EVENT_TYPES:
        raise InvalidEvent(f"event type must be one of {EVENT_TYPES}, but got {event.type!r}")
    _check_id("product_id", event.product_id)
    _check_id("session_id", event.session_id)
    _check_id("shopper_id", event.shopper_id, required=False)
    _check_id("event_id", event.event_id, required=False)
    ts = time.time() if event.ts is None else event.ts
    if not _is_number(ts):
        raise InvalidEvent(f"ts must be a finite number of seconds, but got {event.ts!r}")
    position = event.position
    if position is not None and not (isinstance(position, int) and position >= 0):
        raise InvalidEvent(f"position must be an integer >= 0, but got {position!r}")
    features = None
    if event.features is not None:
        if not isinstance(event.features, dict) or len(event.features) > MAX_FEATURES:
            raise InvalidEvent(f"features must be an object of at most {MAX_FEATURES} numbers")
        for name, value in event.features.items():
            if not isinstance(name, str) or not _is_number(value):
                raise InvalidEvent(f"feature {name!r} must be a finite number, but got {value!r}")
        features = json.dumps({k: float(v) for k, v in event.features.items()})
    request = event.request
    if request is not None and not isinstance(request, str):
        raise InvalidEvent(f"request must be text, but got {type(request).__name__}")
    request = request[:MAX_REQUEST_CHARS] if request else None
    if event.arm is not None and not (isinstance(event.arm, str) and ARM_NAME.fullmatch(event.arm)):
        raise InvalidEvent(f"arm must be a short name, but got {event.arm!r}")
    return (event.event_id, event.type, event.product_id, event.session_id, event.shopper_id,
            float(ts), position, features, request, event.arm)  # fmt: skip


class EventStore:
    """Feedback events, safe to share between threads.

    `known_products(ids)` returns the subset of `ids` the catalog holds; when given, events
    for other products are rejected with UnknownProduct.
    """

    def __init__(
        self,
        path: Path | str,
        known_products: Callable[[Sequence[str]], set[str]] | None = None,
    ) -> None:
        """`path` is a SQLite file, or a `postgresql://` URL for a database shared by every
        worker."""
        self._known_products = known_products
        # Feedback cannot be re-created like an ingest can: sync every commit to disk.
        self._db = open_database(path, synchronous="FULL")
        self._lock = self._db.lock
        self._sql = _DIALECT_SQL[self._db.dialect]
        with self._lock:
            self._db.migrate("events", [SCHEMA])
            if self._db.dialect == SQLITE:
                # delete_shopper is an erasure request: overwrite the freed pages too.
                self._db.execute("PRAGMA secure_delete=ON")
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
                if "arm" not in columns:  # a file made before ranking experiments
                    self._db.execute("ALTER TABLE events ADD COLUMN arm TEXT")
                    self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM events").fetchone()[0]

    # -- writing -------------------------------------------------------------------------

    def record(self, event: FeedbackEvent) -> bool:
        """Store one event, committed before returning; False if it was a duplicate.

        Raises InvalidEvent (or UnknownProduct) naming the bad value.
        """
        rows, rejected = self._validate([event])
        if rejected:
            raise rejected[0][1]
        return self._insert(rows).stored == 1

    def record_many(self, events: Sequence[FeedbackEvent]) -> RecordReport:
        """Store the valid events in one transaction; report duplicates and rejected ones."""
        rows, rejected = self._validate(events)
        report = self._insert(rows)
        report.rejected = sorted((index, str(exc)) for index, exc in rejected)
        return report

    def _validate(
        self, events: Sequence[FeedbackEvent]
    ) -> tuple[list[tuple], list[tuple[int, InvalidEvent]]]:
        rows: list[tuple[int, tuple]] = []
        rejected: list[tuple[int, InvalidEvent]] = []
        for index, event in enumerate(events):
            try:
                rows.append((index, _event_row(event)))
            except InvalidEvent as exc:
                rejected.append((index, exc))
        if self._known_products is not None and rows:
            known = self._known_products(sorted({row[2] for _, row in rows}))
            for index, row in rows:
                if row[2] not in known:
                    rejected.append((index, UnknownProduct(f"unknown product id {row[2]!r}")))
            rows = [(index, row) for index, row in rows if row[2] in known]
        return [row for _, row in rows], rejected

    def _insert(self, rows: list[tuple]) -> RecordReport:
        report = RecordReport()
        with self._db:
            if self._db.dialect == POSTGRESQL:  # held until the transaction ends
                self._db.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))
            for row in rows:
                if self._repeated(row):
                    report.duplicates += 1
                    continue
                cursor = self._db.execute(
                    "INSERT INTO events (event_id, type, product_id, session_id, shopper_id, ts,"
                    " position, features, request, arm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    row,
                )
                if cursor.rowcount == 1:
                    report.stored += 1
                else:
                    report.duplicates += 1
        return report

    def _repeated(self, row: tuple) -> bool:
        event_id, kind, product_id, session_id, shopper_id, ts = row[:6]
        if event_id is not None or kind == "impression":
            return False
        ifnull = self._sql["ifnull"]
        return (
            self._db.execute(
                "SELECT 1 FROM events WHERE event_id IS NULL AND type = ? AND product_id = ?"
                f" AND session_id = ? AND {ifnull}(shopper_id, '') = {ifnull}(?, '')"
                " AND ts BETWEEN ? AND ? LIMIT 1",
                (kind, product_id, session_id, shopper_id, ts - REPEAT_WINDOW_S,
                 ts + REPEAT_WINDOW_S),
            ).fetchone()
            is not None
        )  # fmt: skip

    def counts(self, start: float, end: float) -> dict[str, int]:
        """How many events of each type were recorded between `start` and `end`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT type, count(*) FROM events WHERE ts >= ? AND ts < ? GROUP BY type",
                (start, end),
            ).fetchall()
        return {kind: count for kind, count in rows}

    def impressions_by_product(self, start: float, end: float) -> dict[str, int]:
        """How often each product was shown between `start` and `end`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT product_id, count(*) FROM events WHERE type = 'impression'"
                " AND ts >= ? AND ts < ? GROUP BY product_id",
                (start, end),
            ).fetchall()
        return dict(rows)

    def arm_counts(self, start: float, end: float) -> dict[str, dict[str, int]]:
        """Event counts by type for each ranking arm between `start` and `end`: a session's
        events count for the arm that ranked its impressions ({arm: {type: n}})."""
        with self._lock:
            rows = self._db.execute(
                "SELECT a.arm, e.type, count(*) FROM events e JOIN (SELECT session_id,"
                " max(arm) AS arm FROM events WHERE type = 'impression' AND arm IS NOT NULL"
                " AND ts >= ? AND ts < ? GROUP BY session_id) a ON a.session_id = e.session_id"
                " WHERE e.ts >= ? AND e.ts < ? GROUP BY 1, 2",
                (start, end, start, end),
            ).fetchall()
        arms: dict[str, dict[str, int]] = {}
        for arm, kind, count in rows:
            arms.setdefault(arm, {})[kind] = count
        return arms

    def daily_counts(self, start: float, end: float) -> dict[str, dict[str, int]]:
        """`counts` for each UTC day between `start` and `end` ("2026-12-01": {type: n})."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._sql['day']}, type, count(*) FROM events"
                " WHERE ts >= ? AND ts < ? GROUP BY 1, 2",
                (start, end),
            ).fetchall()
        days: dict[str, dict[str, int]] = {}
        for day, kind, count in rows:
            days.setdefault(day, {})[kind] = count
        return days

    def delete_shopper(self, shopper_id: str, session_ids: Sequence[str] = ()) -> int:
        """Erase a shopper's events, with the anonymous events of sessions they signed in to
        and of `session_ids` (the sessions they owned, from the session store).

        Returns how many events were removed.
        """
        with self._lock:
            with self._db:
                owned = sum(
                    self._db.execute(
                        "DELETE FROM events WHERE session_id = ?", (session_id,)
                    ).rowcount
                    for session_id in session_ids
                )
                anonymous = self._db.execute(
                    "DELETE FROM events WHERE shopper_id IS NULL AND session_id IN"
                    " (SELECT DISTINCT session_id FROM events WHERE shopper_id = ?)",
                    (shopper_id,),
                ).rowcount
                signed_in = self._db.execute(
                    "DELETE FROM events WHERE shopper_id = ?", (shopper_id,)
                ).rowcount
            if self._db.dialect == SQLITE:  # old copies of the pages live on in the WAL
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return owned + anonymous + signed_in

    # -- reading -------------------------------------------------------------------------

    def newest_row(self) -> int:
        """The row number of the newest event (0 when there is none)."""
        with self._lock:
            return self._db.execute("SELECT max(rid) FROM events").fetchone()[0] or 0

    def products_since(self, row: int) -> list[str]:
        """The products with events stored after row number `row`: what a worker re-reads
        to learn from the feedback other workers stored."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT product_id FROM events WHERE rid > ?", (row,)
            ).fetchall()
        return [pid for (pid,) in rows]

    def product_stats(
        self, product_ids: Sequence[str] | None = None
    ) -> dict[str, tuple[float, float]]:
        """product_id -> (impressions, positives), for Beta posteriors of how well it does.

        Per shopper (or anonymous session) and product, each event type counts once: the
        positives are the distinct positive types seen (click, like, add_to_cart, purchase),
        the impressions are at least those plus one for a dislike, and at least one if the
        product was shown. The pair is then scaled down to at most MAX_SHOPPER_IMPRESSIONS.
        So 10,000 dislikes from one shopper are one impression without a positive.
        """
        greatest, least = self._sql["greatest"], self._sql["least"]
        sql = (
            "WITH per_actor AS (SELECT product_id,"
            " MAX(CASE WHEN type = 'impression' THEN 1 ELSE 0 END) AS shown,"
            " MAX(CASE WHEN type = 'dislike' THEN 1 ELSE 0 END) AS neg,"
            f" COUNT(DISTINCT CASE WHEN type IN ({_POSITIVE_SQL}) THEN type END) AS pos"
            f" FROM events {{where}} GROUP BY product_id, {_ACTOR_SQL}"
            f"), trials AS (SELECT product_id, pos, {greatest}(shown, pos + neg) AS n"
            " FROM per_actor)"
            f" SELECT product_id, SUM({least}(n, :cap)), SUM(pos * {least}(n, :cap) * 1.0 / n)"
            " FROM trials GROUP BY product_id"
        )
        where, params = "", {"cap": MAX_SHOPPER_IMPRESSIONS}
        if product_ids is not None:
            where = f"WHERE {self._sql['in_ids']}"
            ids = list(product_ids)
            params["ids"] = ids if self._db.dialect == POSTGRESQL else json.dumps(ids)
        with self._lock:
            rows = self._db.execute(sql.format(where=where), params).fetchall()
        return {pid: (float(shown), float(positives)) for pid, shown, positives in rows}

    def interactions(
        self, *, shopper_id: str | None = None, session_id: str | None = None, limit: int = 500
    ) -> list[tuple[str, str, float]]:
        """(product_id, type, ts), newest first: a shopper's across sessions, or one session's.

        With both ids, the shopper's events in that session.
        """
        if shopper_id is None and session_id is None:
            raise ValueError("interactions needs a shopper_id or a session_id")
        conditions, params = [], []
        for column, value in (("shopper_id", shopper_id), ("session_id", session_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        sql = (
            f"SELECT product_id, type, ts FROM events WHERE {' AND '.join(conditions)}"
            " ORDER BY ts DESC, rid DESC LIMIT ?"
        )
        with self._lock:
            return [tuple(row) for row in self._db.execute(sql, [*params, limit])]

    def last_shown(self, session_id: str) -> list[tuple[str, dict[str, float]]]:
        """(product_id, features) of the session's latest list of shown products, in order."""
        sql = (
            "SELECT product_id, features FROM events WHERE session_id = ? AND type = 'impression'"
            " AND features IS NOT NULL AND ts = (SELECT MAX(ts) FROM events WHERE session_id = ?"
            " AND type = 'impression' AND features IS NOT NULL) ORDER BY position NULLS FIRST, rid"
        )
        with self._lock:
            rows = self._db.execute(sql, (session_id, session_id)).fetchall()
        return [(pid, json.loads(features)) for pid, features in rows]

    def training_rows(
        self, since: float | None = None
    ) -> list[tuple[dict[str, float], int, float, float]]:
        """(features, label, weight, ts) for each impression with features, oldest first.

        The label is 1 when a positive event for the same session and product follows the
        impression (before the product is shown again) and no dislike does; else 0. Each
        shopper's (or anonymous session's) rows share a total weight of at most
        MAX_SHOPPER_TRAINING_WEIGHT.
        """
        window = (
            "e.session_id = s.session_id AND e.product_id = s.product_id AND e.ts >= s.ts"
            " AND (s.next_ts IS NULL OR e.ts < s.next_ts)"
        )
        sql = (
            "WITH s AS ("
            " SELECT rid, session_id, product_id, ts, features, "
            f" {_ACTOR_SQL} AS actor, LEAD(ts) OVER"
            " (PARTITION BY session_id, product_id ORDER BY ts, rid) AS next_ts"
            " FROM events WHERE type = 'impression' AND ts >= ?)"
            " SELECT s.features, s.actor, s.ts,"
            f" EXISTS (SELECT 1 FROM events e WHERE {window} AND e.type IN ({_POSITIVE_SQL})),"
            f" EXISTS (SELECT 1 FROM events e WHERE {window} AND e.type = 'dislike')"
            " FROM s WHERE s.features IS NOT NULL ORDER BY s.ts, s.rid"
        )
        with self._lock:
            rows = self._db.execute(sql, (-math.inf if since is None else since,)).fetchall()
        per_actor = Counter(row[1] for row in rows)
        return [
            (
                json.loads(features),
                int(bool(hit) and not miss),
                min(1.0, MAX_SHOPPER_TRAINING_WEIGHT / per_actor[actor]),
                ts,
            )
            for features, actor, ts, hit, miss in rows
        ]
