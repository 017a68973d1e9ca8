"""Opening one of the bot's SQLite files: WAL journal, shared between threads, schema made."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to `path` (its folder created), in WAL mode, with `schema` applied.
    Callers serialise their use of it with their own lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    db.commit()
    return db
