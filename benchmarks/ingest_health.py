"""Health probes during a catalog upload: does `/healthz` keep answering while
`POST /v1/catalog` embeds and indexes 1,500 new products?

    python benchmarks/ingest_health.py                 # 1,500 products, probe every 100 ms
    python benchmarks/ingest_health.py --products 5000 --json
    python benchmarks/ingest_health.py --during-warm-up   # upload while the LM still loads

Starts the real app (`shopbot serve` on a free loopback port in its own process, a small
demo catalog so start-up is quick, an admin key `a1` and a chat key `k1`), waits for
`/healthz`, then uploads `--products` generated products (JSONL: titles, descriptions,
prices; ids and descriptions carry a per-run token, so every product is new to the store and
to its embedding cache) with the admin key, while a thread sends `GET /healthz` every
`--interval` seconds. The upload waits for a first chat turn (`Bearer k1`), so the
background LM load is over and the probes measure the upload. Prints the upload's seconds
and report counts, and the probes' latency p50/p95/max in ms and how many took over 1 s.
A load balancer takes a probe that slow as a dead server, so `probes_over_1s` should be 0.

The data dir (`--data-dir`) is kept between runs: the converted LM in it makes the next
start quicker. A catalog upload may be 50x `max_body_bytes` (64,000 by default: 3.2 MB);
when the generated body is larger the server is started with SHOPBOT_MAX_BODY_BYTES raised
to fit, and the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from serving import (  # this folder, on sys.path when a script runs
    free_port,
    percentile,
    wait_healthy,
)

CATALOG_BODY_FACTOR = 50  # bot.channels.http's allowance for catalog uploads
DEFAULT_MAX_BODY_BYTES = 64_000


def catalog_body(count: int, run: str) -> bytes:
    """`count` demo-style products as JSONL, new to any store: ids and text carry `run`."""
    from retrieval.demo.catalog import generate_catalog

    lines = []
    for number, product in enumerate(generate_catalog(count, seed=7), start=1):
        row = product.model_dump(exclude_none=True)
        row["id"] = f"up-{run}-{number:05d}"
        row["description"] = f"{row.get('description', '')} Batch {run}.".strip()
        row.pop("image_url", None)
        lines.append(json.dumps(row, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def start_server(data_dir: Path, port: int, max_body_bytes: int | None) -> subprocess.Popen:
    env = {
        **os.environ,
        "SHOPBOT_DATA_DIR": str(data_dir),
        "SHOPBOT_ADMIN_KEYS": '["a1"]',  # pydantic-settings reads list settings as JSON
        "SHOPBOT_CHAT_KEYS": '["k1"]',
        "SHOPBOT_DEMO_PRODUCTS": "50",
        "SHOPBOT_RATE_LIMIT_PER_MINUTE": "100000",
        "ANONYMIZED_TELEMETRY": "False",
    }
    if max_body_bytes is not None:
        env["SHOPBOT_MAX_BODY_BYTES"] = str(max_body_bytes)
    shopbot = Path(sys.executable).with_name("shopbot")
    log = open(data_dir.parent / f"{data_dir.name}-server.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [str(shopbot), "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )


def wait_ready(
    base: str, server: subprocess.Popen, timeout: float, lm: bool
) -> tuple[float, float | None]:
    """Seconds until `/healthz` answers 200, and (with `lm`) until a first chat turn has.

    The server answers health probes while the LM still loads in the background; that load
    (not the upload) would own the probes' worst seconds, so by default the upload waits.
    """
    started = time.monotonic()
    wait_healthy(base, server, timeout)
    healthy = time.monotonic() - started
    if not lm:
        return healthy, None
    turn = httpx.post(
        f"{base}/v1/chat",
        json={"message": "hello"},
        headers={"Authorization": "Bearer k1"},
        timeout=timeout,
    )
    if turn.status_code != 200:
        raise SystemExit(f"the first chat turn failed: {turn.status_code} {turn.text[:200]}")
    return healthy, time.monotonic() - started


def probe(base: str, interval: float, stop: threading.Event, results: dict) -> None:
    """GET /healthz every `interval` s (or right after a slower answer) until `stop`."""
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            results["at"].append(started)
            try:
                response = client.get("/healthz")
                elapsed_ms = (time.perf_counter() - started) * 1000
                results["ms"].append(elapsed_ms)
                if response.status_code != 200:
                    results["errors"].append(f"status {response.status_code}")
                else:
                    results["products"].append(response.json()["products"])
            except httpx.HTTPError as exc:
                results["ms"].append((time.perf_counter() - started) * 1000)
                results["errors"].append(repr(exc)[:200])
            stop.wait(max(0.0, interval - (time.perf_counter() - started)))


def measure(args: argparse.Namespace) -> dict:
    run = secrets.token_hex(4)
    body = catalog_body(args.products, run)
    allowed = DEFAULT_MAX_BODY_BYTES * CATALOG_BODY_FACTOR
    max_body_bytes = None
    if len(body) > allowed:
        max_body_bytes = -(-len(body) // CATALOG_BODY_FACTOR) + 1024
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args.data_dir.mkdir(parents=True, exist_ok=True)
    server = start_server(args.data_dir, port, max_body_bytes)
    results: dict[str, list] = {"ms": [], "at": [], "errors": [], "products": []}
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(base, args.interval, stop, results), daemon=True)
    try:
        healthy_s, lm_ready_s = wait_ready(
            base, server, args.start_timeout, lm=not args.during_warm_up
        )
        prober.start()
        time.sleep(1.0)  # a few probes of the idle server first, as the baseline
        idle_probes = len(results["ms"])
        started = time.perf_counter()
        response = httpx.post(
            f"{base}/v1/catalog",
            content=body,
            headers={"Authorization": "Bearer a1", "Content-Type": "application/x-ndjson"},
            timeout=args.upload_timeout,
        )
        upload_s = time.perf_counter() - started
    finally:
        stop.set()
        if prober.is_alive():
            prober.join()
        server.terminate()
        server.wait(timeout=60)
    report = response.json() if response.headers.get("content-type") == "application/json" else {}
    during = results["ms"][idle_probes:]
    slowest = sorted(
        zip(results["ms"][idle_probes:], results["at"][idle_probes:], strict=False), reverse=True
    )[:5]
    return {
        "products": args.products,
        "body_bytes": len(body),
        "max_body_bytes": max_body_bytes or DEFAULT_MAX_BODY_BYTES,
        "max_body_bytes_raised": max_body_bytes is not None,
        "server_healthy_s": round(healthy_s, 1),
        "server_lm_ready_s": round(lm_ready_s, 1) if lm_ready_s is not None else None,
        "upload_during_lm_warm_up": args.during_warm_up,
        "upload": {
            "status": response.status_code,
            "seconds": round(upload_s, 2),
            "ingest_seconds": report.get("seconds"),
            "added": report.get("added"),
            "updated": report.get("updated"),
            "unchanged": report.get("unchanged"),
            "rejected": report.get("rejected"),
            "detail": report.get("detail"),
        },
        "healthz": {
            "interval_ms": round(args.interval * 1000),
            "probes_idle": idle_probes,
            "idle_ms_p50": percentile(results["ms"][:idle_probes], 0.5),
            "probes_during_upload": len(during),
            "ms_p50": percentile(during, 0.5),
            "ms_p95": percentile(during, 0.95),
            "ms_max": round(max(during), 1) if during else None,
            "probes_over_1s": sum(1 for ms in during if ms > 1000),
            # the slowest probes: latency and when they were sent, seconds into the upload
            "slowest": [{"ms": round(ms, 1), "at_s": round(at - started, 2)} for ms, at in slowest],
            "errors": len(results["errors"]),
            "error_samples": results["errors"][:3],
            # the catalog size the probes saw: it grows batch by batch during the upload
            "products_first": results["products"][0] if results["products"] else None,
            "products_last": results["products"][-1] if results["products"] else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1500)
    parser.add_argument("--interval", type=float, default=0.1, help="Seconds between probes.")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/shopbot-ingest-health"))
    parser.add_argument("--start-timeout", type=float, default=900)
    parser.add_argument("--upload-timeout", type=float, default=900)
    parser.add_argument(
        "--during-warm-up",
        action="store_true",
        help="Upload as soon as /healthz answers, while the LM may still be loading.",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON document only.")
    args = parser.parse_args()

    result = measure(args)
    if args.json:
        print(json.dumps(result))
        return
    upload, health = result["upload"], result["healthz"]
    print(
        f"upload of {result['products']} products ({result['body_bytes']:,} bytes): "
        f"HTTP {upload['status']} in {upload['seconds']} s, added {upload['added']}, "
        f"updated {upload['updated']}, unchanged {upload['unchanged']}, "
        f"rejected {upload['rejected']}"
    )
    print(
        f"/healthz during it: {health['probes_during_upload']} probes, p50 {health['ms_p50']} ms, "
        f"p95 {health['ms_p95']} ms, max {health['ms_max']} ms, "
        f"{health['probes_over_1s']} over 1 s, {health['errors']} errors"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
