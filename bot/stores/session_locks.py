"""One turn at a time per session across every worker of a store.

Inside one process the chat service already runs a session's turns in order; several
workers on one PostgreSQL database (`database_url`) also take a PostgreSQL advisory lock
named after the session for the whole turn, so a second message sent to another worker at
the same moment waits for the first turn to be saved and starts from its slots, products
and order context (as Rasa's lock store does for its replicas).

    locks = session_locks(settings.database_url)
    with locks.hold("s-abc"):
        ...  # load the session, run the turn, save it

The lock lives on a connection of its own, one per turn in hand, so a worker that dies
mid-turn frees its sessions when the server drops its connections. Without a database
URL, `hold` holds nothing: one process owns the SQLite files.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from retrieval.database import DatabaseError

# The second key of the advisory locks, so a session's lock cannot be another tool's.
LOCK_SPACE = 0x5B0B


class SessionLocks:
    """Without a database: nothing to share, each process orders its own turns."""

    @contextmanager
    def hold(self, session_id: str) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class PostgresSessionLocks(SessionLocks):
    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self.url = url
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        try:
            return self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.OperationalError as exc:
            raise DatabaseError(f"cannot connect to the database: {exc}") from exc

    @contextmanager
    def hold(self, session_id: str) -> Iterator[None]:
        """Wait until no other turn of `session_id` runs on any worker, then hold it."""
        conn = self._connection()
        key = (LOCK_SPACE, session_id)
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
        try:
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
            except self._psycopg.Error:
                conn.close()  # the server frees a closed connection's locks
            with self._lock:
                self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def session_locks(database_url: str | None) -> SessionLocks:
    """The locks for a store: advisory locks on its PostgreSQL database, else none."""
    return PostgresSessionLocks(database_url) if database_url else SessionLocks()
