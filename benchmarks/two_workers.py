"""Two `shopbot serve` workers on one PostgreSQL and one Chroma server, driven as one bot.

    .venv/bin/python benchmarks/two_workers.py --json
    .venv/bin/python benchmarks/two_workers.py --demo-products 300

What an outside check of several workers does, with the real default LM and parser: it
starts a PostgreSQL (Debian's package, `benchmarks/postgres.py`), a Chroma server
(`chroma run`) and two `shopbot serve` processes with `SHOPBOT_DATABASE_URL` and
`SHOPBOT_CHROMA_URL`, each with its own data dir and port. The first ingests the demo
catalog on its first start; then:

1. catalog: three new products of a new brand posted to worker A's `/v1/catalog` are what
   worker B's `/v1/products/search` finds under that brand;
2. slots: "show me rain jackets" on A, then "something cheaper, in blue" on B: B's products
   are rain jackets, blue, cheapest first;
3. handoff: "I want to talk to a person" on B; A's `/v1/admin/handoffs` lists the session
   and A stays silent in it; released through A, B answers again;
4. at once: two messages to one new session, sent at the same moment to A and to B: both
   are kept, one after the other, the later starting from the earlier's slots.

Prints each check with what it saw (or `--json`: `{"checks": {name: {"passed", "detail"}},
"all_passed", "seconds"}`); exits 1 when one fails. Logs: `<work-dir>/worker-*.log`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from postgres import postgres_server  # this folder, on sys.path when a script runs
from serving import chroma_server, clean_env, free_port, wait_healthy

CHAT = {"Authorization": "Bearer chat-key"}
ADMIN = {"Authorization": "Bearer admin-key"}
TURN_TIMEOUT = 600.0
NEW_PRODUCTS = [
    {"id": "W-1", "title": "Lumen Trail Headlamp 400", "category": "Camping", "price": 34.0,
     "brand": "Lumen", "attributes": {"colour": "black", "type": "headlamp"}},
    {"id": "W-2", "title": "Lumen Trail Headlamp 800", "category": "Camping", "price": 52.0,
     "brand": "Lumen", "attributes": {"colour": "orange", "type": "headlamp"}},
    {"id": "W-3", "title": "Lumen Camp Lantern", "category": "Camping", "price": 41.0,
     "brand": "Lumen", "attributes": {"colour": "green", "type": "lantern"}},
]  # fmt: skip


def start_worker(name: str, folder: Path, database_url: str, chroma_url: str, demo: int):
    port = free_port()
    env = {
        **clean_env(),
        "SHOPBOT_DATA_DIR": str(folder / f"data-{name}"),
        "SHOPBOT_DATABASE_URL": database_url,
        "SHOPBOT_CHROMA_URL": chroma_url,
        "SHOPBOT_CHAT_KEYS": '["chat-key"]',
        "SHOPBOT_ADMIN_KEYS": '["admin-key"]',
        "SHOPBOT_RATE_LIMIT_PER_MINUTE": "1000",
        "SHOPBOT_DEMO_PRODUCTS": str(demo),
        "ANONYMIZED_TELEMETRY": "False",
    }
    log = open(folder / f"worker-{name}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("shopbot")), "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process, timeout=1800)  # the first start ingests the demo catalog
    return process, httpx.Client(base_url=base, timeout=TURN_TIMEOUT)


def say(worker: httpx.Client, text: str, session: str) -> dict:
    response = worker.post("/v1/chat", json={"session_id": session, "message": text}, headers=CHAT)
    response.raise_for_status()
    return response.json()


def colours(product: dict) -> str:
    return " ".join([product.get("title", ""), json.dumps(product.get("attributes", {}))]).lower()


def run_checks(a: httpx.Client, b: httpx.Client, run: str) -> dict[str, dict]:
    checks: dict[str, dict] = {}

    def record(name: str, passed: bool, detail: str) -> None:
        checks[name] = {"passed": bool(passed), "detail": detail}
        print(f"{'PASS' if passed else 'FAIL'} {name}: {detail}", file=sys.stderr)

    posted = a.post("/v1/catalog", json=NEW_PRODUCTS, headers=ADMIN)
    query = {"q": "headlamp lantern", "brand": "lumen", "k": 10}  # a brand only they have
    found = b.get("/v1/products/search", params=query, headers=CHAT).json()
    ids = sorted(p["id"] for p in found["products"])
    record(
        "catalog",
        posted.is_success and ids == ["W-1", "W-2", "W-3"],
        f"posted to A: {posted.status_code}; B's search for {query}: {ids}",
    )

    session = f"s-two-workers-{run}"
    first = say(a, "show me rain jackets", session)
    second = say(b, "something cheaper, in blue", session)
    shown = second["products"]
    jackets = all("jacket" in p["title"].lower() for p in shown)
    blue = all("blue" in colours(p) for p in shown)
    prices = [p["price"] for p in shown]
    record(
        "slots",
        bool(shown) and jackets and blue and prices == sorted(prices),
        f"A showed {[p['title'] for p in first['products'][:2]]}...; B then showed "
        f"{[(p['title'], p['price']) for p in shown[:3]]}, slots {second['slots']}",
    )

    handed = say(b, "I want to talk to a person", session)
    waiting = a.get("/v1/admin/handoffs", headers=ADMIN).json()["sessions"]
    listed = session in [s["session_id"] for s in waiting]
    silent = say(a, "hello? anyone there?", session)
    released = a.post(f"/v1/sessions/{session}/release", headers=ADMIN).json()["released"]
    back = say(b, "show me rain jackets", session)
    record(
        "handoff",
        handed["handoff"]
        and listed
        and silent["route"] == "handed_off"
        and released
        and back["route"] == "search",
        f"B handed off: {handed['handoff']}; in A's inbox: {listed}; A then: "
        f"{silent['route']!r}; released via A: {released}; B then: {back['route']!r}",
    )

    session = f"s-at-once-{run}"
    say(a, "show me rain jackets", session)
    start, replies = threading.Barrier(2), {}

    def send(worker: httpx.Client, text: str) -> None:
        start.wait()
        replies[text] = say(worker, text, session)

    threads = [
        threading.Thread(target=send, args=(a, "only the blue ones")),
        threading.Thread(target=send, args=(b, "under $150 please")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    turns = a.get(f"/v1/sessions/{session}", headers=CHAT).json()["turns"]
    order = [t["message"] for t in turns][1:]
    later = replies.get(order[-1], {}) if order else {}
    slots = later.get("slots", {})
    record(
        "at_once",
        sorted(order) == ["only the blue ones", "under $150 please"]
        and slots.get("colour") == "blue"
        and slots.get("price_max") == 150,
        f"kept in order {order}; the later turn's slots {slots}",
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-products", type=int, default=1200)
    parser.add_argument("--work-dir", type=Path, help="logs and data dirs (default: a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = args.work_dir or Path(tempfile.mkdtemp(prefix="shopbot-two-workers-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    workers = []
    with postgres_server() as database_url, chroma_server(folder) as chroma_url:
        try:
            for name in ("a", "b"):  # one after the other: A's first start fills the store
                workers.append(
                    start_worker(name, folder, database_url, chroma_url, args.demo_products)
                )
            checks = run_checks(workers[0][1], workers[1][1], str(int(time.time())))
        finally:
            for process, client in workers:
                client.close()
                process.terminate()
                process.wait(timeout=60)
    report = {
        "checks": checks,
        "all_passed": all(check["passed"] for check in checks.values()),
        "seconds": round(time.monotonic() - started, 1),
        "work_dir": str(folder),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, check in checks.items():
            print(f"{'PASS' if check['passed'] else 'FAIL'}  {name:9} {check['detail']}")
    sys.exit(0 if report["all_passed"] else 1)


if __name__ == "__main__":
    main()
