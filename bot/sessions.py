"""Conversations: every chat turn, and the state the next turn starts from, in SQLite (WAL).

A session's state is its last turn: the intent, the merged slots and the products shown,
so "cheaper", "in blue" and "the second one" resolve against what the shopper saw. The turn
log is also what the next fine-tuning dataset draws on (turns whose products were liked).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    rid INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    shopper_id TEXT,
    ts REAL NOT NULL,
    message TEXT NOT NULL,
    intent TEXT NOT NULL,
    slots TEXT NOT NULL,
    state TEXT NOT NULL,
    shown TEXT NOT NULL,
    reply TEXT NOT NULL,
    route TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, rid);
"""
MAX_STORED_MESSAGE = 4000


@dataclass
class SessionState:
    """Where a conversation stands before the next message."""

    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)
    turns: int = 0

    def previous(self) -> dict[str, Any] | None:
        return {"intent": self.intent, "slots": self.slots} if self.intent else None


class SessionStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def state(self, session_id: str) -> SessionState:
        with self._lock:
            count = self._db.execute(
                "SELECT count(*) FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
            # The context is the last product turn: a "thanks" or a returns question in
            # between does not make the shopper's search forget its filters.
            row = self._db.execute(
                "SELECT intent, state, shown FROM turns WHERE session_id = ?"
                " AND route IN ('search', 'details') ORDER BY rid DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        if row is None:
            return SessionState(turns=count)
        return SessionState(row[0], json.loads(row[1]), json.loads(row[2]), count)

    def record_turn(
        self,
        session_id: str,
        message: str,
        intent: str,
        slots: dict[str, Any],
        state: dict[str, Any],
        shown: list[str],
        reply: str,
        route: str,
        shopper_id: str | None = None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO turns (session_id, shopper_id, ts, message, intent, slots, state,"
                " shown, reply, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    shopper_id,
                    time.time(),
                    message[:MAX_STORED_MESSAGE],
                    intent,
                    json.dumps(slots),
                    json.dumps(state),
                    json.dumps(shown),
                    reply,
                    route,
                ),
            )
            self._db.commit()

    def history(self, session_id: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, message, intent, slots, shown, reply, route FROM turns"
                " WHERE session_id = ? ORDER BY rid DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        keys = ("ts", "message", "intent", "slots", "shown", "reply", "route")
        turns = [dict(zip(keys, row, strict=True)) for row in reversed(rows)]
        for turn in turns:
            turn["slots"], turn["shown"] = json.loads(turn["slots"]), json.loads(turn["shown"])
        return turns

    def delete_shopper(self, shopper_id: str) -> int:
        with self._lock:
            cursor = self._db.execute("DELETE FROM turns WHERE shopper_id = ?", (shopper_id,))
            self._db.commit()
            return cursor.rowcount
