"""Groundedness of chat replies: over generated shopping turns on the demo catalog, count
product names, brands and prices in replies that are not in the turn's retrieved records,
and ratings, review counts, stock statements, comparisons, colours, materials and sizes
the records contradict; over held-out service questions (the shared Bitext data), count
empty answers and prices or numbers a policy answer states that its cited sections do not.

The checks here are independent of the bot's own (`bot/dialogue/grounding.py`,
`bot/dialogue/claims.py`): every catalog title and brand and every price-looking string is
searched for in each reply; a comparison counts as false only when no product the sentence
names bears it out (the bot's own check is stricter: it reads the sentence's subject). Also
reported: how often the bot's check dropped an LM sentence, and how often it fell back to a
record-only reply.

    python benchmarks/groundedness.py                # 500 + 150 turns, writes benchmarks/out/
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
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
SENTENCE = re.compile(r"(?<=[.!?])\s+")
RATING = re.compile(r"(?:rated|rating:?|rating of)\s+(\d\.\d)|(\d\.\d)\s*(?:stars|out of 5)")
REVIEWS = re.compile(r"(\d[\d,]*)\s+(?:reviews|shoppers|ratings)")
# words -> (value, whether more of it is claimed)
COMPARATIVES = {
    r"cheaper|cheapest|less expensive|lower price|more affordable": (lambda p: p.price, False),
    r"more expensive|pricier|priciest|most expensive": (lambda p: p.price, True),
    r"better rat|higher rat|best rat|highest rat|better review|top rated": (
        lambda p: p.rating,
        True,
    ),
    r"lower rat|worse rat|worst rat": (lambda p: p.rating, False),
    r"more popular|most popular|more reviews|most reviews": (lambda p: p.review_count, True),
}


def false_claims(reply: str, shown: list) -> list[str]:
    """Sentences stating a rating, review count, stock status or comparison that no shown
    product bears out."""
    found = []
    for sentence in SENTENCE.split(reply):
        lowered = sentence.lower()
        named = [p for p in shown if p.title.lower() in lowered] or shown
        ratings = {round(p.rating, 1) for p in named if p.rating is not None}
        counts = {p.review_count for p in named}
        bad = any(float(a or b) not in ratings for a, b in RATING.findall(lowered))
        bad |= any(int(n.replace(",", "")) not in counts for n in REVIEWS.findall(lowered))
        bad |= "out of stock" in lowered and all(p.in_stock is not False for p in named)
        for words, (value, more) in COMPARATIVES.items():
            if not re.search(words, lowered) or not shown:
                continue
            field = named if len(named) >= 2 else shown
            values = [value(p) for p in field]
            if None in values or len(field) < 2:
                bad = True
                continue
            extreme = max(values) if more else min(values)
            subjects = [p for p in named if value(p) == extreme]
            bad |= not subjects or values.count(extreme) > 1 and "share" not in lowered
        if bad:
            found.append(sentence)
    return found


def false_traits(reply: str, shown: list, traits: set[str]) -> list[str]:
    """Colours and materials of the catalog (`traits`) and "size N" that a reply sentence
    gives products none of whose records (the ones it names, else all shown) has them;
    "narrow it down" gives no product the material "down"."""
    found = []
    for sentence in SENTENCE.split(reply):
        if sentence.startswith(filter_notes()):
            continue  # the shopper's own filters restated
        lowered = sentence.lower()
        named = [p for p in shown if p.title.lower() in lowered] or shown
        records = " ".join(
            f"{p.title} {p.description or ''} {' '.join(map(str, (p.attributes or {}).values()))}"
            for p in named
        ).lower()
        for trait in traits:
            said = rf"\b{re.escape(trait)}\b"  # given to a product: "comes in down", "is red,"
            given = rf"(?:\b(?:in|of|from|is|are|and|with|a|an)\s+|,\s*){re.escape(trait)}\b"
            if re.search(given, lowered) and not re.search(said, records):
                found.append(f"{trait}: {sentence}")
        sizes = {
            s.strip().lower()
            for p in named
            for s in str((p.attributes or {}).get("size", "")).split(",")
        }
        for size in re.findall(r"\bsize (\d+|x*[sml]|x+l)\b", lowered):
            if size not in sizes:
                found.append(f"size {size}: {sentence}")
    return found


def filter_notes() -> tuple[str, ...]:
    """How the template sentences restating a search's filters begin."""
    from bot.prompts import prompt_table

    texts = prompt_table("canned_replies.toml")
    keys = ("search_relaxed", "search_filters")
    return tuple(texts[key].split("{")[0] for key in keys if key in texts)


def policy_violations(reply: str, docs: list) -> list[str]:
    """Prices and numbers a policy answer states that its cited sections do not."""
    source = " ".join(doc.text for doc in docs).replace("**", "")
    numbers = set(NUMBER.findall(source))
    return [n for n in NUMBER.findall(reply) if n not in numbers]


def violations(reply: str, shown: list, catalog: list) -> dict[str, list[str]]:
    """Prices, titles and brands a reply names that the products it showed do not have.
    The sentences a search reply opens with from templates, restating the shopper's own
    filters ("I couldn't find any from Auralite, so I left that out.", "Showing what I
    found under $100.00."), state no product fact and are left out of the check."""
    reply = " ".join(s for s in SENTENCE.split(reply) if not s.startswith(filter_notes()))
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
    parser.add_argument("--service", type=int, default=150, help="held-out service questions")
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
        totals = {"price": 0, "title": 0, "brand": 0, "claim": 0, "trait": 0}
        traits = {
            str(p.attributes.get(name)).lower()
            for p in catalog
            for name in ("colour", "material")
            if (p.attributes or {}).get(name)
        }
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
            found["claim"] = false_claims(turn.reply, shown)
            found["trait"] = false_traits(turn.reply, shown, traits)
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
        service = service_questions(args.service)
        policy = {"turns": len(service), "answered_from_policies": 0, "empty": 0, "unbacked": 0}
        for number, text in enumerate(service):
            started = time.perf_counter()
            turn = assistant.respond(text, session_id=f"service-{number}")
            reply_ms.append((time.perf_counter() - started) * 1000)
            if turn.route == "policy":
                policy["answered_from_policies"] += 1
                policy["empty"] += not turn.reply.strip()
                unbacked = policy_violations(turn.reply, turn.docs)
                policy["unbacked"] += len(unbacked)
                if unbacked and len(examples) < 10:
                    examples.append({"text": text, "reply": turn.reply, "unbacked": unbacked})
        assistant.close()
        shop.close()
    result = {
        "turns": len(rows),
        "ungrounded": totals,
        "ungrounded_total": sum(totals.values()),
        "turns_with_sentences_removed": removed_turns,
        "record_only_fallbacks": fallbacks,
        "service_questions": policy,
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


def service_questions(count: int) -> list[str]:
    """Held-out customer-service utterances of the shared data (the parser's validation
    split), [] without the shared data."""
    from finetune.dataset import SHARED_DATA, SUPPORT_FILE, DatasetSizes, read_jsonl, split_support

    if not (SHARED_DATA / SUPPORT_FILE).is_file():
        return []
    sizes = DatasetSizes()
    _, held_out = split_support(read_jsonl(SHARED_DATA / SUPPORT_FILE), sizes.validation_share, 0)
    return [row["text"] for row in held_out[:count]]


if __name__ == "__main__":
    main()
