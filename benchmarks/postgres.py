"""A throwaway PostgreSQL server for the benchmarks (Debian's package), on loopback:

    with postgres_server() as url:      # postgresql://shopbot@127.0.0.1:PORT/postgres
        ...

initdb into a temporary folder (as the `postgres` user when run as root), `pg_ctl start`
on a free port with trust authentication for loopback, removed again on exit. The tests
start theirs the same way (`tests/conftest.py`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from serving import free_port  # this folder, on sys.path when a script runs


def postgres_program(name: str) -> str:
    """A PostgreSQL server program: on PATH, or where Debian's package puts it."""
    found = shutil.which(name) or next(
        iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise SystemExit(f"{name} not found: apt-get install postgresql")
    return str(found)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="shopbot-bench-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    pg_ctl = postgres_program("pg_ctl")
    subprocess.run(
        [*as_user, postgres_program("initdb"), "-D", str(data), "-U", "shopbot", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c max_connections=200"
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://shopbot@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)
