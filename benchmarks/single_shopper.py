"""One shopper alone: the latency of sequential turns through the chat service (the path
every channel takes), with the real default model on the demo store.

    python benchmarks/single_shopper.py              # 4 warm-up turns, then 12 measured

Prints the median whole-turn time and decoded tokens per second as JSON. The service runs
each turn on a thread of its own and the LM's torch work on its scheduler's thread, so this
is where a slow thread set-up shows (see the README).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.dialogue.service import ChatService  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.shop import Shop  # noqa: E402

MESSAGES = ["red running shoes", "waterproof jacket for hiking", "warm sleeping bag",
            "kitchen knife set"]  # fmt: skip


def timings(reply) -> dict:
    """A reply's timings, from the typed Reply (or the dict of earlier versions)."""
    return getattr(reply, "timings_ms", None) or reply["timings_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".shopbot"))
    parser.add_argument("--turns", type=int, default=12)
    args = parser.parse_args()

    settings = load_settings(data_dir=args.data_dir.resolve())
    shop = Shop(settings)
    shop.ensure_demo_catalog()
    chats = ChatService(settings, shop)
    speeds, walls = [], []
    for n in range(4 + args.turns):
        started = time.perf_counter()
        reply = chats.reply(MESSAGES[n % len(MESSAGES)], session_id=f"alone-{n}-{time.time()}")
        if n >= 4:  # the first turns load the model and warm the caches
            walls.append((time.perf_counter() - started) * 1000)
            if timings(reply).get("decode_tokens_per_s"):
                speeds.append(timings(reply)["decode_tokens_per_s"])
    chats.close()
    shop.close()
    print(json.dumps({
        "turns": len(walls),
        "turn_ms_p50": round(statistics.median(walls)),
        "decode_tokens_per_s_p50": round(statistics.median(speeds), 1) if speeds else None,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
