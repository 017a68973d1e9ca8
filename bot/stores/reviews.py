"""Operators' review of the bot's turns: find stored turns by their text, intent, route and
time; mark one good, or wrong with the intent it should have had. `shopbot finetune build`
takes the verdicts into the next training set (`finetune.dataset.logged_turns`).

    reviews = TurnReviews(settings.sessions_path)
    turns = reviews.search(text="refund", route="clarify")
    reviews.review(turns[0]["id"], "wrong", intent="get_refund", reviewer="key:ab12")

The turns are the session store's (same file, `bot.stores.sessions`); a shopper's erasure
removes the verdicts on their turns with them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bot.stores.sessions import JSON_SQL, open_sessions_database

VERDICTS = ("good", "wrong")
MAX_RESULTS = 200


class InvalidReview(ValueError):
    """A verdict or corrected intent that is not allowed; the message says which."""


class TurnReviews:
    def __init__(self, path: Path | str) -> None:
        self._db = open_sessions_database(path)
        self._lock = self._db.lock

    def close(self) -> None:
        self._db.close()

    def search(
        self,
        text: str | None = None,
        intent: str | None = None,
        route: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The bot's turns (not people's) matching every filter given, newest first: `text`
        in the shopper's message or the reply (case-insensitive), the parser's `intent`, the
        `route`, between `start` and `end`. Each with its parse, the sections it cited, the
        sentences the check removed, how many products it showed and its review."""
        where, values = ["t.route != 'agent'"], []
        if text:
            pattern = (
                "%"
                + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            where.append(
                "(lower(t.message) LIKE ? ESCAPE '\\' OR lower(t.reply) LIKE ? ESCAPE '\\')"
            )
            values += [pattern, pattern]
        for column, value in (("intent", intent), ("route", route)):
            if value:
                where.append(f"t.{column} = ?")
                values.append(value)
        if start is not None:
            where.append("t.ts >= ?")
            values.append(start)
        if end is not None:
            where.append("t.ts < ?")
            values.append(end)
        shown = JSON_SQL[self._db.dialect][0].format("t.shown")
        query = (
            "SELECT t.rid, t.session_id, t.ts, t.message, t.intent, t.slots, t.route, t.reply,"
            f" t.cited, t.removed, {shown}, r.verdict, r.intent, r.reviewer"
            " FROM turns t LEFT JOIN reviews r ON r.turn_id = t.rid"
            f" WHERE {' AND '.join(where)} ORDER BY t.rid DESC LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(query, (*values, min(limit, MAX_RESULTS))).fetchall()
        return [
            {
                "id": rid,
                "session_id": session,
                "ts": ts,
                "message": message,
                "intent": parsed,
                "slots": json.loads(slots),
                "route": route_,
                "reply": reply,
                "cited": json.loads(cited),
                "removed": json.loads(removed),
                "shown": shown,
                "review": (
                    {"verdict": verdict, "intent": right, "reviewer": reviewer} if verdict else None
                ),
            }
            for (rid, session, ts, message, parsed, slots, route_, reply, cited, removed, shown,
                 verdict, right, reviewer) in rows
        ]  # fmt: skip

    def review(
        self, turn_id: int, verdict: str, intent: str | None, reviewer: str, intents: set[str]
    ) -> bool:
        """Record a verdict on a turn (replacing any earlier one): "good", or "wrong" with
        the intent it should have had (one of `intents`). False for an unknown turn."""
        if verdict not in VERDICTS:
            raise InvalidReview(f"verdict must be one of {', '.join(VERDICTS)}")
        if verdict == "wrong" and intent not in intents:
            raise InvalidReview("a wrong turn needs the intent it should have had (see /docs)")
        with self._lock, self._db:
            found = self._db.execute(
                "SELECT 1 FROM turns WHERE rid = ? AND route != 'agent'", (turn_id,)
            ).fetchone()
            if found is None:
                return False
            self._db.execute(
                "INSERT INTO reviews (turn_id, verdict, intent, reviewer, ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (turn_id) DO UPDATE SET"
                " verdict = excluded.verdict, intent = excluded.intent,"
                " reviewer = excluded.reviewer, ts = excluded.ts",
                (turn_id, verdict, intent if verdict == "wrong" else None, reviewer, time.time()),
            )
        return True
