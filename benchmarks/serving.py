"""Helpers the benchmarks that start `shopbot serve` share: a free loopback port, waiting
for the server's health probe, a percentile of measured times, a clean environment and a
Chroma server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SHOPBOT_")}


@contextlib.contextmanager
def chroma_server(folder: Path):
    port = free_port()
    chroma = str(Path(sys.executable).with_name("chroma"))
    log = open(folder / "chroma.log", "w")  # noqa: SIM115 (the child writes it until it stops)
    process = subprocess.Popen(
        [chroma, "run", "--path", str(folder / "chroma"), "--host", "127.0.0.1", "--port",
         str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**clean_env(), "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).is_success:
                break
        time.sleep(0.3)
    else:
        process.kill()
        raise SystemExit("the Chroma server did not start; see chroma.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
