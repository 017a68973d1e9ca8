"""Callers' token buckets in the database every worker shares (`database_url`), so a rate
limit holds for the store as a whole, not once per worker (`bot.channels.access`).

    buckets = RateBuckets(settings.database_url)
    wait = buckets.take("key:ab12", per_minute=60)   # None: allowed; else seconds to wait

Each call is one atomic statement (an upsert that refills the bucket for the time since its
last call and spends one token only when one is left), so two workers cannot both spend the
last token. Callers are stored as hashes (a client address is personal data), and buckets
idle long enough to be full again are deleted now and then.
"""

from __future__ import annotations

import hashlib
import time

from retrieval.database import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_buckets (
    caller TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated REAL NOT NULL
)
"""
# The bucket refilled for the time since its last call (never backwards: workers' clocks
# may differ by a little), at most full.
_REFILLED = "LEAST(:size, b.tokens + GREATEST(0, excluded.updated - b.updated) * :rate)"
TAKE = f"""
INSERT INTO rate_buckets AS b (caller, tokens, updated) VALUES (:caller, :size - 1, :now)
ON CONFLICT (caller) DO UPDATE SET tokens = {_REFILLED} - 1,
    updated = GREATEST(b.updated, excluded.updated)
WHERE {_REFILLED} >= 1
RETURNING tokens
"""
PRUNE_EVERY_S = 60.0


class RateBuckets:
    def __init__(self, url: str) -> None:
        self._db = open_database(url)
        self._db.migrate("rate_buckets", [SCHEMA])
        self._next_prune = 0.0

    def take(self, caller: str, per_minute: int) -> float | None:
        """Spend one of `caller`'s calls: None when allowed, else the seconds until one is."""
        now, rate = time.time(), per_minute / 60.0
        digest = hashlib.sha256(caller.encode()).hexdigest()
        values = {"caller": digest, "size": float(per_minute), "now": now, "rate": rate}
        if self._db.execute(TAKE, values).fetchone() is not None:
            self._prune(now, per_minute / rate)
            return None
        row = self._db.execute(
            "SELECT tokens, updated FROM rate_buckets WHERE caller = ?", (digest,)
        ).fetchone()
        tokens = min(per_minute, row[0] + max(0.0, now - row[1]) * rate) if row else 0.0
        return max(0.0, (1.0 - tokens) / rate)

    def _prune(self, now: float, refill_s: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_S
        self._db.execute("DELETE FROM rate_buckets WHERE updated < ?", (now - refill_s,))

    def close(self) -> None:
        self._db.close()
