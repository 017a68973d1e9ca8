"""How fast the operators' analytics answer on a big log: `GET /v1/admin/metrics` (and its
CSV) over 100,000 feedback events and 20,000 turns of 5,000 conversations.

    python benchmarks/admin_metrics.py                  # seeds a temporary data dir
    python benchmarks/admin_metrics.py --events 300000 --turns 60000

The real admin routes on the real stores (SQLite files in a temporary data dir), called over
HTTP with an admin key: events spread over the last 30 days, turns with the route mix of a
real log (searches, details, policy answers, clarifications, handoffs). The feedback store
is opened first, as the server does at start-up (`store_open_s`: it reads the learnt click
rates). Prints the median and worst time of `--repeat` calls as JSON. No LM is loaded: the
metrics never need one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bot.channels.access import Access  # noqa: E402
from bot.channels.admin import admin_router  # noqa: E402
from bot.dialogue.service import ChatService  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.shop import Shop  # noqa: E402
from bot.stores.reviews import TurnReviews  # noqa: E402
from bot.stores.sessions import SessionChanges, TurnRecord  # noqa: E402
from retrieval.events import EventStore, FeedbackEvent  # noqa: E402

ROUTES = [
    ("search", "search_products", 5), ("details", "product_details", 1),
    ("policy", "check_refund_policy", 0), ("clarify", "complaint", 0),
    ("out_of_scope", "out_of_scope", 0), ("search", "search_products", 0),
    ("handoff", "contact_human_agent", 0), ("greeting", "greeting", 0),
]  # fmt: skip
KINDS = ["impression"] * 80 + ["click"] * 12 + ["like"] * 3 + ["add_to_cart"] * 3 + ["purchase"] * 2


def seed(settings, chats: ChatService, events: int, turns: int, rng: random.Random) -> None:
    """The log as the stores hold it (events written straight to the feedback store: the
    products they name are not in this empty catalog, which the live route would check)."""
    now = time.time()
    log = EventStore(settings.events_path)
    batch = []
    for n in range(events):
        batch.append(
            FeedbackEvent(
                type=rng.choice(KINDS),
                product_id=f"P{rng.randrange(1, 1201):05d}",
                session_id=f"s{rng.randrange(turns // 4)}",
                event_id=f"e{n}",
                ts=now - rng.random() * 30 * 86400,
            )
        )
        if len(batch) == 5000:
            log.record_many(batch)
            batch = []
    log.record_many(batch)
    log.close()
    for n in range(turns):
        route, intent, shown = rng.choices(ROUTES, weights=(40, 10, 15, 8, 6, 4, 4, 13))[0]
        session = f"s{n % (turns // 4)}"
        record = TurnRecord(
            session_id=session,
            message=f"message {rng.randrange(2000)}",
            intent=intent,
            slots={},
            state={"handoff_reason": "asked"} if route == "handoff" else {},
            shown=[f"P{rng.randrange(1, 1201):05d}" for _ in range(shown)],
            reply="a reply",
            route=route,
        )
        chats.sessions.open(session, "open", None)
        chats.sessions.save_turn(record, SessionChanges())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=Path(data_dir), admin_keys=["admin-key"])
        shop = Shop(settings)
        chats = ChatService(settings, shop)
        started = time.perf_counter()
        seed(settings, chats, args.events, args.turns, random.Random(0))
        seeded_s = time.perf_counter() - started
        started = time.perf_counter()
        shop.events.count()  # opened at start-up, as `shopbot serve` does (open_stores)
        results_open_s = time.perf_counter() - started
        app = FastAPI()
        reviews = TurnReviews(settings.sessions_path)
        app.include_router(admin_router(shop, chats, Access(settings), reviews))
        headers = {"Authorization": "Bearer admin-key"}
        results = {"events": args.events, "turns": args.turns, "seed_s": round(seeded_s, 1)}
        results["store_open_s"] = round(results_open_s, 2)
        with TestClient(app) as client:
            for path in ("/v1/admin/metrics", "/v1/admin/metrics.csv"):
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.get(path, headers=headers)
                    times.append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                results[path] = {
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                }
            figures = client.get("/v1/admin/metrics", headers=headers).json()
        results["counted"] = {
            "conversations": figures["conversations"],
            "turns": figures["turns"],
            "impressions": figures["impressions"],
            "days": len(figures["daily"]),
        }
        reviews.close()
        chats.close()
        shop.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
