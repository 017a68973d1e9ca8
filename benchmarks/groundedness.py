"""Groundedness of chat replies: over generated shopping turns on the demo catalog, count
product names, brands and prices in replies that are not in the turn's retrieved records.

The check here is independent of the bot's own (`bot/grounding.py`): every catalog title
and brand, and every price-looking string, is searched for in each reply. Also reported:
how often the bot's check had to drop an LM sentence, and how often it fell back to a
record-only reply.

    python benchmarks/groundedness.py                # 500 turns, writes benchmarks/out/
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
PRICE = re.compile(r"[$€£]\s?(\d[\d,]*(?:\.\d{1,2})?)")


def violations(reply: str, shown: list, catalog: list) -> dict[str, list[str]]:
    lowered = reply.lower()
    shown_titles = {p.title.lower() for p in shown}  # the demo catalog repeats some titles
    shown_brands = {(p.brand or "").lower() for p in shown}
    prices = {round(p.price, 2) for p in shown if p.price is not None}
    found = {"price": [], "title": [], "brand": []}
    for match in PRICE.findall(reply):
        if round(float(match.replace(",", "")), 2) not in prices:
            found["price"].append(match)
    for product in catalog:
        title = product.title.lower()
        if title not in shown_titles and title in lowered:
            found["title"].append(product.title)
    for brand in {(p.brand or "").lower() for p in catalog} - shown_brands - {""}:
        if re.search(rf"\b{re.escape(brand)}\b", lowered):
            found["brand"].append(brand)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from bot.dialogue.engine import Assistant
    from bot.settings import load_settings
    from bot.shop import Shop
    from finetune.shopping_requests import generate_shopping_turns
    from retrieval.demo.catalog import generate_catalog

    catalog = generate_catalog(1200)
    rows = generate_shopping_turns(catalog, args.turns, seed=args.seed, split="eval")
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(None, data_dir=Path(folder))
        shop = Shop(settings)
        shop.ensure_demo_catalog()
        lm_dir = Path(".shopbot").resolve()
        from bot.lm.loading import load_lm

        lm = load_lm(data_dir=lm_dir, adapter=settings.adapter_path)
        assistant = Assistant.open(settings, shop, lm=lm)
        totals = {"price": 0, "title": 0, "brand": 0}
        examples, removed_turns, fallbacks, reply_ms, speeds = [], 0, 0, [], []
        replies: list[dict] = []
        session = 0
        for row in rows:
            if row["previous"] is None:
                session += 1
            started = time.perf_counter()
            turn = assistant.respond(row["text"], session_id=f"bench-{session}")
            reply_ms.append((time.perf_counter() - started) * 1000)
            shown = [item.product for item in turn.products]
            found = violations(turn.reply, shown, catalog)
            for kind, items in found.items():
                totals[kind] += len(items)
            replies.append({"text": row["text"], "reply": turn.reply,
                            "shown": [p.id for p in shown], "found": found})  # fmt: skip
            if any(found.values()) and len(examples) < 10:
                examples.append(replies[-1])
            removed_turns += bool(turn.removed)
            fallbacks += turn.reply.startswith("Here is what I found:")
            if turn.timings.get("decode_tokens_per_s"):
                speeds.append(turn.timings["decode_tokens_per_s"])
        assistant.close()
        shop.close()
    result = {
        "turns": len(rows),
        "ungrounded": totals,
        "ungrounded_total": sum(totals.values()),
        "turns_with_sentences_removed": removed_turns,
        "record_only_fallbacks": fallbacks,
        "turn_ms_p50": round(statistics.median(reply_ms), 1),
        "decode_tokens_per_s_p50": round(statistics.median(speeds), 1) if speeds else None,
        "examples": examples,
        "replies": replies,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "groundedness.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("examples", "replies")}, indent=2)
    )
    if examples:
        print(
            f"{len(examples)} example violations in benchmarks/out/groundedness.json",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
