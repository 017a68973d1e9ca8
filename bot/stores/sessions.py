"""Conversations: every chat turn, and the state the next turn starts from, in SQLite (WAL)
or, for several workers, PostgreSQL (`database_url`).

A session's product context is its last product turn: the intent, the merged slots and the
products shown, so "cheaper", "in blue" and "the second one" resolve against what the
shopper saw. The turn log is also what the next fine-tuning dataset draws on (turns whose
products were liked).

Beside the turns, one row per session holds what must outlive a turn and a restart: the
caller that made it (`owner`: a key, a page visitor or the open local API; see
`bot.channels.access`) and the shopper it belongs to, which every read and turn checks; whether a
person has taken it over (handoff, until `release`), the count of consecutive turns the
bot could not serve, the order request waiting for an order number or e-mail, and the
e-mail and order this session has proved it owns.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import ShopbotError
from bot.settings import MAX_MESSAGE_CHARS
from retrieval.database import POSTGRESQL, Database, open_database

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
    route TEXT NOT NULL,
    author TEXT,
    cited TEXT NOT NULL DEFAULT '[]',
    removed TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, rid);
CREATE INDEX IF NOT EXISTS turns_by_time ON turns (ts);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    shopper_id TEXT,
    created REAL NOT NULL,
    handed_off_at REAL,
    handoff_reason TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    pending TEXT,
    verified_email TEXT,
    current_order TEXT,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_shopper ON sessions (shopper_id);
CREATE TABLE IF NOT EXISTS reviews (
    turn_id INTEGER PRIMARY KEY,
    verdict TEXT NOT NULL,
    intent TEXT,
    reviewer TEXT,
    ts REAL NOT NULL
);
"""
# Columns turns gained after their table was first made: agent turns name an author, bot
# turns keep the policy sections they cited and the sentences the check removed.
TURN_COLUMNS = {
    "author": "TEXT",
    "cited": "TEXT NOT NULL DEFAULT '[]'",
    "removed": "TEXT NOT NULL DEFAULT '[]'",
}
# The SQL that differs: a JSON array's length, and a text field of a JSON object.
JSON_SQL = {
    "sqlite": ("json_array_length({0})", "json_extract({0}, '$.{1}')"),
    POSTGRESQL: ("json_array_length({0}::json)", "({0}::json ->> '{1}')"),
}
# Sessions made before owners were recorded: help-desk ones belong to the help desk, the
# rest to nobody (any caller gets "no session"), since nothing says whose they were.
MIGRATIONS = (
    "ALTER TABLE sessions ADD COLUMN owner TEXT",
    "UPDATE sessions SET owner = CASE WHEN session_id LIKE 'chatwoot-%'"
    " THEN 'helpdesk:chatwoot' ELSE 'unknown' END WHERE owner IS NULL",
)
# The owner of sessions made in-process (the CLI) or through the keyless local API.
OPEN_OWNER = "open"
SEEN_TURNS = 3  # "anything else?" leaves out what the last this many product turns showed
ORDER_FIELDS = ("pending", "verified_email", "current_order")


@dataclass
class SessionState:
    """Where a conversation stands before the next message."""

    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # shown in the last few product turns
    focus: int | None = None  # the one shown product the last product turn was about ("it")
    turns: int = 0
    shopper_id: str | None = None
    handed_off: bool = False
    handoff_reason: str | None = None
    failures: int = 0  # consecutive turns the bot could not serve
    pending: dict[str, Any] | None = None  # an order request waiting for an id, e-mail, ...
    verified_email: str | None = None  # proved by giving it with an order number on it
    current_order: str | None = None  # the verified order last talked about
    last_intent: str | None = None
    last_route: str | None = None
    last_message: str = ""

    def previous(self) -> dict[str, Any] | None:
        return {"intent": self.intent, "slots": self.slots} if self.intent else None


@dataclass
class TurnRecord:
    """A completed turn as the store keeps it (no e-mails, no card numbers: see the engine)."""

    session_id: str
    message: str
    intent: str
    slots: dict[str, Any]
    state: dict[str, Any]
    shown: list[str]
    reply: str
    route: str
    shopper_id: str | None = None
    cited: list[str] = field(default_factory=list)  # ids of the policy sections quoted
    removed: list[str] = field(default_factory=list)  # sentences the check dropped


@dataclass
class SessionChanges:
    """What a turn changes in its session besides adding itself, saved with it."""

    order_context: dict[str, Any] = field(default_factory=dict)  # of ORDER_FIELDS
    hand_off: str | None = None  # why a person takes the conversation over
    failed: bool | None = None  # one more turn not served (True), one served (False), neither
    take_back: bool = False  # the shopper asked the bot to go on: the handoff ends


class UnknownSession(ShopbotError):
    """No session of this caller (and shopper) has this id (REST: 404). A session made by
    another caller gets the same answer as one that does not exist."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id


def iso_time(ts: float) -> str:
    """A stored time (seconds since the epoch) as the API shows it: ISO 8601, UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def new_session_id(prefix: str = "s-") -> str:
    """A session id the server issues: 144 random bits, never derived from content."""
    return prefix + secrets.token_urlsafe(18)


def open_sessions_database(target: Path | str) -> Database:
    """The sessions' database (a SQLite file or a PostgreSQL URL), its schema up to date."""
    db = open_database(target)
    db.migrate("sessions", [SCHEMA])
    if db.dialect == POSTGRESQL:
        return db
    db.execute("PRAGMA secure_delete=ON")  # an erased shopper's turns are overwritten
    # Files made before the schema was versioned may lack later columns.
    columns = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
    if "owner" not in columns:
        for statement in MIGRATIONS:
            db.execute(statement)
        db.commit()
    present = {row[1] for row in db.execute("PRAGMA table_info(turns)")}
    for name, kind in TURN_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE turns ADD COLUMN {name} {kind}")
    db.commit()
    return db


class SessionStore:
    def __init__(self, path: Path | str) -> None:
        self._db = open_sessions_database(path)
        self._lock = self._db.lock
        self._json_length, self._json_text = JSON_SQL[self._db.dialect]

    def close(self) -> None:
        self._db.close()

    def state(self, session_id: str) -> SessionState:
        with self._lock:
            count = self._db.execute(
                "SELECT count(*) FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
            # The context is the last product turn: a "thanks" or a returns question in
            # between does not make the shopper's search forget its filters.
            product_turns = self._db.execute(
                "SELECT intent, state, shown, route, slots FROM turns WHERE session_id = ?"
                " AND route IN ('search', 'details') ORDER BY rid DESC LIMIT ?",
                (session_id, SEEN_TURNS),
            ).fetchall()
            row = product_turns[0] if product_turns else None
            last = self._db.execute(
                "SELECT intent, route, message FROM turns WHERE session_id = ?"
                " ORDER BY rid DESC LIMIT 1",
                (session_id,),
            ).fetchone()
            info = self._db.execute(
                "SELECT shopper_id, handed_off_at, handoff_reason, failures, pending,"
                " verified_email, current_order FROM sessions WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        state = SessionState(turns=count)
        if row is not None:
            state.intent, state.slots, state.shown = row[0], json.loads(row[1]), json.loads(row[2])
            state.seen = list(dict.fromkeys(i for r in product_turns for i in json.loads(r[2])))
            refs = json.loads(row[4]).get("product_refs") if row[3] == "details" else None
            if refs and len(refs) == 1 and 1 <= refs[0] <= len(state.shown):
                state.focus = refs[0]
        if last is not None:
            state.last_intent, state.last_route, state.last_message = last
        if info is not None:
            state.shopper_id, handed_off_at, state.handoff_reason, state.failures = info[:4]
            state.handed_off = handed_off_at is not None
            state.pending = json.loads(info[4]) if info[4] else None
            state.verified_email, state.current_order = info[5], info[6]
        return state

    def open(self, session_id: str, owner: str, shopper_id: str | None = None) -> bool:
        """Start the session for `owner` (and `shopper_id`) if it is new; True when it is
        theirs: made by `owner`, and its shopper (if it has one) is `shopper_id`. A shopper
        named on a session without one claims it. A session already known costs a read,
        no write."""
        with self._lock:
            row = self._db.execute(
                "SELECT owner, shopper_id FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is None:  # a new session: its caller (and shopper) own it from now on
                with self._db:
                    self._db.execute(
                        "INSERT INTO sessions (session_id, created, owner, shopper_id)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (session_id, time.time(), owner, shopper_id),
                    )
            elif shopper_id and row[1] is None and hmac.compare_digest(row[0] or "", owner):
                with self._db:
                    self._db.execute(
                        "UPDATE sessions SET shopper_id = ? WHERE session_id = ?"
                        " AND shopper_id IS NULL",
                        (shopper_id, session_id),
                    )
        return self.belongs_to(session_id, owner, shopper_id)

    def belongs_to(self, session_id: str, owner: str, shopper_id: str | None = None) -> bool:
        """Whether the session exists, `owner` made it, and its shopper (if any) is
        `shopper_id`. Callers answer "no session" otherwise, so ids reveal nothing."""
        with self._lock:
            row = self._db.execute(
                "SELECT owner, shopper_id FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[0] or "", owner):
            return False
        return row[1] is None or row[1] == shopper_id

    def release(self, session_id: str) -> bool:
        """Give the conversation back to the bot; True when it was handed off."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE sessions SET handed_off_at = NULL, handoff_reason = NULL, failures = 0"
                " WHERE session_id = ? AND handed_off_at IS NOT NULL",
                (session_id,),
            )
            self._db.commit()
            return cursor.rowcount > 0

    def handed_off(self) -> list[dict[str, Any]]:
        """The conversations people have taken over, oldest handoff first, each with the
        shopper's last message."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.session_id, s.shopper_id, s.handed_off_at, s.handoff_reason,"
                " (SELECT message FROM turns t WHERE t.session_id = s.session_id"
                "  AND t.route != 'agent' AND t.message != '' ORDER BY rid DESC LIMIT 1)"
                " FROM sessions s WHERE s.handed_off_at IS NOT NULL ORDER BY s.handed_off_at"
            ).fetchall()
        keys = ("session_id", "shopper_id", "handed_off_at", "reason", "last_message")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def add_agent_message(self, session_id: str, text: str, author: str) -> float:
        """A person's message to the shopper, as a turn of the session (route "agent", the
        text as its reply). A person who writes has taken the conversation over: the bot
        stays silent in it until `release`. Returns the message's time."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO turns (session_id, shopper_id, ts, message, intent, slots, state,"
                " shown, reply, route, author) VALUES (?, NULL, ?, '', 'agent', '{}', '{}',"
                " '[]', ?, 'agent', ?)",
                (session_id, now, text, author),
            )
            self._db.execute(
                "UPDATE sessions SET handed_off_at = ?, handoff_reason = 'operator', failures = 0,"
                " pending = NULL WHERE session_id = ? AND handed_off_at IS NULL",
                (now, session_id),
            )
        return now

    def agent_messages_since(self, session_id: str, since: float) -> list[dict[str, Any]]:
        """People's messages to the shopper written after `since`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, reply, author FROM turns WHERE session_id = ? AND route = 'agent'"
                " AND ts > ? ORDER BY rid",
                (session_id, since),
            ).fetchall()
        return [{"ts": ts, "text": text, "author": author} for ts, text, author in rows]

    def exists(self, session_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                is not None
            )

    def activity(self, start: float, end: float) -> list[dict[str, Any]]:
        """The shoppers' turns (not the agents') between `start` and `end`, oldest first:
        session, time, message, intent, route, how many products were shown, and for a
        handoff turn its reason."""
        with self._lock:
            rows = self._db.execute(
                "SELECT session_id, ts, message, intent, route,"
                f" {self._json_length.format('shown')},"
                f" {self._json_text.format('state', 'handoff_reason')}"
                " FROM turns WHERE ts >= ? AND ts < ? AND route != 'agent' ORDER BY rid",
                (start, end),
            ).fetchall()
        keys = ("session_id", "ts", "message", "intent", "route", "shown", "handoff_reason")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def save_turn(self, turn: TurnRecord, changes: SessionChanges) -> None:
        """Add a completed turn and apply what it changed in its session, in one
        transaction: the next turn of the session sees all of it or none of it."""
        unknown = set(changes.order_context) - set(ORDER_FIELDS)
        if unknown:
            raise ValueError(f"order context fields are {ORDER_FIELDS}, but got {sorted(unknown)}")
        context = dict(changes.order_context)
        if context.get("pending") is not None:
            context["pending"] = json.dumps(context["pending"])
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO turns (session_id, shopper_id, ts, message, intent, slots, state,"
                " shown, reply, route, cited, removed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    turn.session_id,
                    turn.shopper_id,
                    time.time(),
                    turn.message[:MAX_MESSAGE_CHARS],
                    turn.intent,
                    json.dumps(turn.slots),
                    json.dumps(turn.state),
                    json.dumps(turn.shown),
                    turn.reply,
                    turn.route,
                    json.dumps(turn.cited),
                    json.dumps(turn.removed),
                ),
            )
            if context:
                assignments = ", ".join(f"{name} = ?" for name in context)
                self._db.execute(
                    f"UPDATE sessions SET {assignments} WHERE session_id = ?",
                    (*context.values(), turn.session_id),
                )
            if changes.failed is not None:
                self._db.execute(
                    "UPDATE sessions SET failures = CASE WHEN ? THEN failures + 1 ELSE 0 END"
                    " WHERE session_id = ?",
                    (changes.failed, turn.session_id),
                )
            if changes.take_back:
                self._db.execute(
                    "UPDATE sessions SET handed_off_at = NULL, handoff_reason = NULL, failures = 0"
                    " WHERE session_id = ?",
                    (turn.session_id,),
                )
            if changes.hand_off:  # a person takes over; the bot stays silent until `release`
                self._db.execute(
                    "UPDATE sessions SET handed_off_at = ?, handoff_reason = ?, failures = 0,"
                    " pending = NULL WHERE session_id = ? AND handed_off_at IS NULL",
                    (time.time(), changes.hand_off, turn.session_id),
                )

    def shopper_of(self, session_id: str) -> str | None:
        """The shopper a session belongs to (None: nobody has claimed it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT shopper_id FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return row[0] if row else None

    def transcript(self, session_id: str, limit: int = 50) -> dict[str, Any]:
        """The session's last `limit` turns (`history`) with its handoff state."""
        state = self.state(session_id)
        return {
            "session_id": session_id,
            "handed_off": state.handed_off,
            "handoff_reason": state.handoff_reason,
            "turns": self.history(session_id, limit),
        }

    def history(self, session_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The session's last `limit` turns, oldest first (the transcript a person sees)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, message, intent, slots, shown, reply, route, shopper_id, author"
                " FROM turns WHERE session_id = ? ORDER BY rid DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        keys = (
            *("ts", "message", "intent", "slots", "shown", "reply", "route", "shopper_id"),
            "author",
        )
        turns = [dict(zip(keys, row, strict=True)) for row in reversed(rows)]
        for turn in turns:
            turn["slots"], turn["shown"] = json.loads(turn["slots"]), json.loads(turn["shown"])
        return turns

    def delete_shopper(self, shopper_id: str) -> tuple[int, list[str]]:
        """Erase every session the shopper owned, with all of its turns (those sent before
        they were named too), and any other turn naming them. Returns the count of turns
        removed and the ids of the sessions erased (their events go too, see the server)."""
        with self._lock:
            sessions = [
                row[0]
                for row in self._db.execute(
                    "SELECT session_id FROM sessions WHERE shopper_id = ?"
                    " UNION SELECT DISTINCT session_id FROM turns WHERE shopper_id = ?",
                    (shopper_id, shopper_id),
                )
            ]
            with self._db:
                removed = 0
                for session_id in sessions:
                    self._db.execute(
                        "DELETE FROM reviews WHERE turn_id IN"
                        " (SELECT rid FROM turns WHERE session_id = ?)",
                        (session_id,),
                    )
                    removed += self._db.execute(
                        "DELETE FROM turns WHERE session_id = ?", (session_id,)
                    ).rowcount
                    self._db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            if self._db.dialect != POSTGRESQL:  # old pages live on in the WAL
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return removed, sessions
