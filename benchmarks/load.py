"""Load test: many shoppers chatting at once with the real default model, over HTTP.

    python benchmarks/load.py                       # 20 shoppers for 120 s
    python benchmarks/load.py --sessions 5 --seconds 30 --think 2
    python benchmarks/load.py --workers 2           # shopbot serve --workers 2 (PostgreSQL)
    python benchmarks/load.py --workers 2 --lm-server   # ... and the LM on llama-server
    python benchmarks/load.py --compare             # issue 15's table, in one run

Starts the real app (`shopbot serve` on loopback in its own process: demo catalog, default
LM + shipped adapter) and runs `--sessions` simulated shoppers in parallel, arriving over
the first pause. Each one holds a scripted conversation through `POST /v1/chat/stream`,
waits `--think` seconds (+-50%) between messages like a person reading the reply, and likes
the first product it is shown through `POST /v1/feedback`. Afterwards it checks the stores:
every message sent must be a stored turn and every feedback event a stored event. Prints
turn latency and time to the first streamed token (p50/p95), throughput, errors and losses
as JSON, and writes it to benchmarks/out/load.json.

With `--workers N` (N > 1) the server is `shopbot serve --workers N` on a PostgreSQL and a
Chroma server started for the run (`benchmarks/postgres.py`, `chroma run`), as
docs/deploy.md deploys it; the stores checked afterwards are that database's.

With `--lm-server` the LM (parse and replies) runs on one llama.cpp `llama-server` the
workers share (`lm_url`, `lm_parse_on_server`), on the Q8_0 GGUF `shopbot finetune export`
writes (once, into benchmarks/out/export-q8_0/; `.ci/build-llama-server` builds the server),
with 2 threads and 4 slots decoded together. `--compare` runs, one after the other in one
run, 1 worker with the in-process LM and 2 workers sharing a llama-server, at 20 and 40
shoppers each, and writes the four reports side by side (benchmarks/out/load-compare.json).

A search reply opens with a lead sentence written from the results, before the LM has read
its prompt; `first_lm_text_ms` is the time to the first text the LM wrote (the second piece
of a search reply, the first of any other reply the LM writes), over the turns it wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from postgres import postgres_server  # this folder, on sys.path when a script runs
from serving import chroma_server, free_port, percentile

from retrieval.database import open_database

CONVERSATIONS = [
    ["hi", "I need running shoes", "cheaper ones?", "in red", "tell me about the second one"],
    ["waterproof jacket for hiking", "under $150", "compare the first two", "thanks"],
    ["where is my order?", "how long do refunds take?", "can I talk to a person?"],
    ["a gift for a coffee lover", "best rated", "tell me more about the first one"],
    ["warm sleeping bag", "what is your return policy?", "goodbye"],
]


def start_server(
    data_dir: Path, port: int, workers: int = 1, shared: dict[str, str] | None = None
) -> subprocess.Popen:
    """`shopbot serve` in its own process, as in production: the simulated shoppers' HTTP
    clients do not share its interpreter. `shared`: the SHOPBOT_ settings of shared stores."""
    env = {
        **os.environ,
        "SHOPBOT_DATA_DIR": str(data_dir),
        "SHOPBOT_RATE_LIMIT_PER_MINUTE": "10000",
        **(shared or {}),
    }
    shopbot = Path(sys.executable).with_name("shopbot")
    log = open(data_dir.parent / f"{data_dir.name}-server.log", "w")  # noqa: SIM115
    command = [str(shopbot), "serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def wait_ready(base: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                # the LM loads in the background at start: one turn waits for it
                httpx.post(f"{base}/v1/chat", json={"message": "hello"}, timeout=timeout)
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("the server did not start")


def shopper(
    base: str, number: int, until: float, think: float, run: str, results: dict, lock
) -> None:
    rng = random.Random(number)
    client = httpx.Client(base_url=base, timeout=300)
    session = f"load-{run}-{number}-{rng.getrandbits(32):08x}"
    time.sleep(rng.uniform(0, think))  # shoppers arrive over the first pause, not at once
    script = CONVERSATIONS[number % len(CONVERSATIONS)]
    turn = 0
    while time.monotonic() < until:
        message = script[turn % len(script)]
        if turn and turn % len(script) == 0:
            session = f"load-{run}-{number}-{rng.getrandbits(32):08x}"  # a new conversation
        turn += 1
        started = time.perf_counter()
        deltas: list[float] = []
        reply = None
        try:
            with client.stream(
                "POST", "/v1/chat/stream", json={"session_id": session, "message": message}
            ) as response:
                response.raise_for_status()
                event = None
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                        if event == "delta":
                            deltas.append(time.perf_counter() - started)
                    elif line.startswith("data: ") and event == "reply":
                        reply = json.loads(line[6:])
                    elif line.startswith("data: ") and event == "error":
                        raise RuntimeError(line)
            total = time.perf_counter() - started
            with lock:
                results["sent"].append(session)
                results["turn_ms"].append(total * 1000)
                if deltas:
                    results["first_ms"].append(deltas[0] * 1000)
                if reply is None:
                    results["errors"].append(f"{session}: no reply event")
                elif "prompt_tokens" in reply["timings_ms"]:  # the LM wrote (some of) it
                    led = reply["route"] == "search" and bool(reply["products"])
                    if len(deltas) > led:
                        results["first_lm_ms"].append(deltas[int(led)] * 1000)
            if reply and reply.get("products"):
                event_id = f"{session}-{turn}"
                feedback = client.post(
                    "/v1/feedback",
                    json={
                        "type": "like",
                        "product_id": reply["products"][0]["id"],
                        "session_id": session,
                        "event_id": event_id,
                        "position": 1,
                    },
                )
                with lock:
                    if feedback.status_code == 201:
                        results["feedback"].append(event_id)
                    else:
                        results["errors"].append(f"feedback {feedback.status_code}")
        except Exception as exc:
            with lock:
                results["sent"].append(session)
                results["errors"].append(f"{session}: {exc!r}"[:300])
        time.sleep(max(0.0, min(think * rng.uniform(0.5, 1.5), until - time.monotonic())))
    client.close()


def stored_counts(
    sessions_db: Path | str, events_db: Path | str, sessions: set[str], event_ids: set[str]
) -> tuple[int, int]:
    """The turns stored for `sessions` and the likes stored of `event_ids`: SQLite files or
    a PostgreSQL URL."""
    db = open_database(sessions_db)
    turns = sum(
        db.execute("SELECT count(*) FROM turns WHERE session_id = ?", (s,)).fetchone()[0]
        for s in sessions
    )
    db.close()
    db = open_database(events_db)
    stored = {row[0] for row in db.execute("SELECT event_id FROM events WHERE type = 'like'")}
    db.close()
    return turns, len(stored & event_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--think", type=float, default=10.0, help="Mean pause between turns.")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/shopbot-load"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/load.json"))
    parser.add_argument("--workers", type=int, default=1, help="2+: on PostgreSQL and Chroma.")
    parser.add_argument("--lm-server", action="store_true", help="The LM on llama-server.")
    parser.add_argument("--compare", action="store_true", help="Issue 15's four runs.")
    args = parser.parse_args()
    if args.compare:
        reports = []
        for sessions in (20, 40):
            for workers, lm_server in ((1, False), (2, True)):
                data_dir = args.data_dir.with_name(f"{args.data_dir.name}-{workers}w-{sessions}")
                where = "on llama-server" if lm_server else "in process"
                print(f"{sessions} shoppers, {workers} worker(s), LM {where}", flush=True)
                reports.append(setup(args, data_dir, workers, lm_server, sessions))
                print(json.dumps(reports[-1]), flush=True)
        out = args.out.with_name("load-compare.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(reports, indent=2))
        print(comparison_table(reports))
        return
    report = setup(args, args.data_dir, args.workers, args.lm_server, args.sessions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def setup(args, data_dir: Path, workers: int, lm_server: bool, sessions: int) -> dict:
    """One run: the stores (SQLite files, or PostgreSQL and Chroma for 2+ workers) and the
    LM (in process, or on a llama-server started for the run) it needs, then `run`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        shared: dict[str, str] = {}
        if lm_server:
            from lm_server import export  # this folder

            from bot.lm.llama_cpp import LlamaServer

            served = stack.enter_context(
                LlamaServer(export("q8_0"), threads=2, context=4096 * 4, parallel=4)
            )
            shared.update(SHOPBOT_LM_URL=served.url, SHOPBOT_LM_PARSE_ON_SERVER="1")
        if workers == 1:
            stores = (data_dir / "sessions.sqlite", data_dir / "events.sqlite")
        else:
            url = stack.enter_context(postgres_server())
            chroma = stack.enter_context(chroma_server(data_dir.parent))
            shared.update(SHOPBOT_DATABASE_URL=url, SHOPBOT_CHROMA_URL=chroma)
            stores = (url, url)
        report = run(args, data_dir, workers, sessions, *stores, shared)
    report["lm"] = "llama-server" if lm_server else "in process"
    return report


def comparison_table(reports: list[dict]) -> str:
    """The runs as a Markdown table, for the README."""
    columns = ("sessions", "workers", "lm", "turns_per_s", "first_token_ms_p50",
               "first_token_ms_p95", "turn_ms_p50", "turn_ms_p95", "errors")  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for report in reports:
        lines.append("| " + " | ".join(str(report[c]) for c in columns) + " |")
    return "\n".join(lines)


def run(
    args,
    data_dir: Path,
    workers: int,
    sessions: int,
    sessions_db,
    events_db,
    shared: dict[str, str] | None = None,
) -> dict:
    """Start the server, let the shoppers chat, stop it; the report."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(data_dir, port, workers, shared)
    try:
        wait_ready(base)
    except BaseException:
        server.terminate()
        raise
    results: dict[str, list] = {"sent": [], "turn_ms": [], "first_ms": [], "errors": []}
    results["first_lm_ms"] = []
    results["feedback"] = []
    lock = threading.Lock()
    run = f"{int(time.time()):x}"
    until = time.monotonic() + args.seconds
    started = time.perf_counter()
    threads = [
        threading.Thread(target=shopper, args=(base, n, until, args.think, run, results, lock))
        for n in range(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    server.terminate()
    server.wait(timeout=60)

    stored_turns, stored_feedback = stored_counts(
        sessions_db, events_db, set(results["sent"]), set(results["feedback"])
    )
    return {
        "workers": workers,
        "sessions": sessions,
        "seconds": round(elapsed, 1),
        "think_s": args.think,
        "turns": len(results["sent"]),
        "turns_per_s": round(len(results["sent"]) / elapsed, 2),
        "errors": len(results["errors"]),
        "error_samples": results["errors"][:5],
        "turn_ms_p50": percentile(results["turn_ms"], 0.5),
        "turn_ms_p95": percentile(results["turn_ms"], 0.95),
        "first_token_ms_p50": percentile(results["first_ms"], 0.5),
        "first_token_ms_p95": percentile(results["first_ms"], 0.95),
        "first_lm_text_ms_p50": percentile(results["first_lm_ms"], 0.5),
        "first_lm_text_ms_p95": percentile(results["first_lm_ms"], 0.95),
        "turn_ms_mean": round(statistics.fmean(results["turn_ms"]), 1)
        if results["turn_ms"]
        else None,
        "messages_sent": len(results["sent"]),
        "messages_stored": stored_turns,
        "feedback_sent": len(results["feedback"]),
        "feedback_stored": stored_feedback,
    }


if __name__ == "__main__":
    main()
