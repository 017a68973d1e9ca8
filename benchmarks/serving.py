"""Helpers the benchmarks that start `shopbot serve` share: a free loopback port, waiting
for the server's health probe, and a percentile of measured times."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    """The `q` quantile (0 to 1) of `values`, rounded to 0.1; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def wait_healthy(base: str, server: subprocess.Popen, timeout: float) -> httpx.Response:
    """Poll `/healthz` until it answers 200 (its response); exit with a message when the
    server dies or does not answer within `timeout` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}; see its log")
        try:
            health = httpx.get(f"{base}/healthz", timeout=5)
            if health.status_code == 200:
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s")
