"""Build the SFT dataset: prompt/completion pairs for intent parsing and grounded replies.

Sources, all deterministic given the seed:
- the shared customer-support utterances (Bitext, 27 intents), split per intent into
  train/validation; order numbers and e-mails in them become the order_id / email slots;
- the shared out-of-scope utterances (CLINC150), split by their original CLINC intent so the
  validation side holds whole topics the model never saw;
- shopping turns generated from the catalog (`shopping_requests.py`): searches with filters,
  typos, multi-turn follow-ups, product questions, greetings;
- grounded replies generated from the catalog and the policy documents (`reply_examples.py`);
- logged conversations whose replies got positive feedback, when an event store has any.

    shopbot finetune build --data-dir .shopbot --out data/sft

writes train.jsonl and validation.jsonl (rows: task, prompt, completion) plus
intents.validation.jsonl and slots.validation.jsonl for `shopbot eval intents`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.nlu.parser import context_line
from bot.nlu.schema import EMAIL, clean_slots, format_parse
from bot.prompts import render_chat_text
from retrieval.database import is_database_url, open_database

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SUPPORT_FILE = "customer_support_intents.dev.jsonl"
OUT_OF_SCOPE_FILE = "out_of_scope.dev.jsonl"
_ORDER_NUMBER = re.compile(r"(?<![\w.@])#?([A-Za-z]{0,3}-?\d{5,20})(?![\w@])")


@dataclass(frozen=True)
class DatasetSizes:
    shopping_train: int = 5000
    shopping_validation: int = 1000
    replies_train: int = 1500
    validation_share: float = 0.15
    held_out_topics: float = 0.2


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def support_slots(text: str) -> dict[str, Any]:
    """The order_id and email a customer-support utterance states, found by pattern.

    >>> support_slots("cancel purchase 113542617735902, mail me at a@b.com")
    {'order_id': '113542617735902', 'email': 'a@b.com'}
    """
    slots: dict[str, Any] = {}
    email = EMAIL.search(text)
    if email:
        slots["email"] = email.group()
    order = _ORDER_NUMBER.search(EMAIL.sub(" ", text))
    if order:
        slots["order_id"] = order.group(1)
    return clean_slots(slots)


def split_support(rows: Sequence[dict], share: float, seed: int) -> tuple[list, list]:
    """Per-intent random split, so every intent has the same validation share."""
    by_intent: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_intent[row["intent"]].append(row)
    train, validation = [], []
    for intent in sorted(by_intent):
        group = sorted(by_intent[intent], key=lambda r: r["text"])
        random.Random(f"{seed}:{intent}").shuffle(group)
        cut = max(1, round(len(group) * share))
        validation += group[:cut]
        train += group[cut:]
    return train, validation


def split_out_of_scope(
    rows: Sequence[dict], topic_share: float, share: float, seed: int
) -> tuple[list, list]:
    """Whole CLINC topics go to validation (so it tests topics never trained on), plus a
    row share of CLINC's own catch-all "oos" class."""
    topics = sorted({row.get("clinc_intent", "oos") for row in rows} - {"oos"})
    random.Random(f"{seed}:topics").shuffle(topics)
    held_out = set(topics[: max(len(topics) > 1, round(len(topics) * topic_share))])
    catch_all = sorted((r for r in rows if r.get("clinc_intent", "oos") == "oos"), key=_text)
    random.Random(f"{seed}:oos").shuffle(catch_all)
    cut = max(len(catch_all) > 1, round(len(catch_all) * share))
    validation = [r for r in rows if r.get("clinc_intent") in held_out] + catch_all[:cut]
    train = [r for r in rows if r.get("clinc_intent") not in held_out | {"oos"}]
    return train + catch_all[cut:], validation


def parser_splits(
    products: Sequence[Any], shared_data: Path, sizes: DatasetSizes, seed: int
) -> dict[str, tuple[list[dict], list[dict]]]:
    """(train, validation) rows of the intent parser's three sources: "support" (Bitext,
    per intent), "out_of_scope" (CLINC, whole topics held out) and "shopping" (generated
    from `products`, validation phrasings never trained on). Everything that trains a
    parser (the adapter, the intent head) takes these, so none trains on what it is
    evaluated on."""
    from finetune.shopping_requests import generate_shopping_turns

    support = read_jsonl(shared_data / SUPPORT_FILE)
    out_of_scope = read_jsonl(shared_data / OUT_OF_SCOPE_FILE)
    return {
        "support": split_support(support, sizes.validation_share, seed),
        "out_of_scope": split_out_of_scope(
            out_of_scope, sizes.held_out_topics, sizes.validation_share, seed
        ),
        "shopping": (
            generate_shopping_turns(products, sizes.shopping_train, seed, "train"),
            generate_shopping_turns(products, sizes.shopping_validation, seed + 1, "eval"),
        ),
    }


def parse_example(tokenizer: Any, text: str, intent: str, slots: dict, previous=None) -> dict:
    prompt = render_chat_text(
        tokenizer, "parse_intent", context=context_line(previous), message=text
    )
    return {"task": "parse", "prompt": prompt, "completion": format_parse(intent, slots)}


def build_dataset(
    tokenizer: Any,
    products: Sequence[Any],
    policies: Sequence[Any],
    out_dir: Path,
    *,
    shared_data: Path = SHARED_DATA,
    logged: Iterable[dict] = (),
    sizes: DatasetSizes = DatasetSizes(),
    seed: int = 0,
) -> dict[str, Any]:
    """Write the dataset files into out_dir; returns counts and the data hash."""
    from finetune.reply_examples import generate_reply_examples

    splits = parser_splits(products, shared_data, sizes, seed)
    support_train, support_val = splits["support"]
    oos_train, oos_val = splits["out_of_scope"]
    shop_train, shop_val = splits["shopping"]

    def parses(rows: Iterable[dict], with_slots: bool) -> list[dict]:
        return [
            parse_example(
                tokenizer,
                row["text"],
                row["intent"],
                row.get("slots", {}) if with_slots else support_slots(row["text"]),
                row.get("previous"),
            )
            for row in rows
        ]

    train = parses(support_train, False) + parses(oos_train, False) + parses(shop_train, True)
    train += generate_reply_examples(tokenizer, products, policies, sizes.replies_train, seed)
    train += [_logged_example(tokenizer, row) for row in logged]
    validation = parses(support_val, False) + parses(oos_val, False) + parses(shop_val, True)
    random.Random(seed).shuffle(train)

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out_dir / "train.jsonl", train)
    _write_jsonl(out_dir / "validation.jsonl", validation)
    intents = [{"text": r["text"], "intent": r["intent"]} for r in support_val + oos_val]
    intents += [{"text": r["text"], "intent": r["intent"], "slots": r["slots"],
                 "previous": r["previous"]} for r in shop_val]  # fmt: skip
    _write_jsonl(out_dir / "intents.validation.jsonl", intents)
    return {
        "train": len(train),
        "validation": len(validation),
        "support": {"train": len(support_train), "validation": len(support_val)},
        "out_of_scope": {"train": len(oos_train), "validation": len(oos_val)},
        "shopping": {"train": len(shop_train), "validation": len(shop_val)},
        "logged": sum(1 for r in train if r["task"] == "logged"),
        "data_hash": file_hash(out_dir / "train.jsonl"),
        "seed": seed,
    }


def logged_turns(sessions: Path | str, events: Path | str) -> list[dict[str, Any]]:
    """What the conversation log teaches, as parse rows (text, intent, slots): the turns an
    operator reviewed (`bot.stores.reviews`: a good one as parsed, a wrong one with the
    intent it should have had), and the search turns whose shown products the shopper then
    liked, clicked or bought (unless reviewed wrong). None without a log yet. `sessions` and
    `events` are the SQLite files, or one PostgreSQL URL for both."""
    shown = "strpos(t.shown, '\"' || e.product_id || '\"')"
    if is_database_url(sessions):
        db: Any = open_database(sessions)
        tables = {
            row[0]
            for row in db.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        }
        events_table = "events" if "events" in tables else None
    else:
        sessions, events = Path(sessions), Path(events)
        if not sessions.is_file():
            return []
        db = sqlite3.connect(f"file:{sessions}?mode=ro", uri=True)
        shown = shown.replace("strpos", "instr")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        events_table = None
        if events.is_file():
            db.execute("ATTACH DATABASE ? AS ev", (f"file:{events}?mode=ro",))
            events_table = "ev.events"
    try:
        if "turns" not in tables:
            return []
        rows: dict[str, dict[str, Any]] = {}
        if events_table:
            wrong = "SELECT turn_id FROM reviews WHERE verdict = 'wrong'"
            liked = db.execute(
                f"SELECT DISTINCT t.message, t.intent, t.slots FROM turns t JOIN {events_table} e"
                " ON e.session_id = t.session_id AND e.ts >= t.ts"
                " AND e.type IN ('like', 'click', 'add_to_cart', 'purchase')"
                f" AND {shown} > 0 WHERE t.route = 'search'"
                + (f" AND t.rid NOT IN ({wrong})" if "reviews" in tables else "")
            ).fetchall()
            for message, intent, slots in liked:
                rows[message] = {"text": message, "intent": intent, "slots": _slots(slots)}
        if "reviews" in tables:
            reviewed = db.execute(
                "SELECT t.message, t.intent, t.slots, r.verdict, r.intent FROM reviews r"
                " JOIN turns t ON t.rid = r.turn_id WHERE t.message != '' ORDER BY r.ts"
            ).fetchall()
            for message, parsed, slots, verdict, right in reviewed:
                intent = parsed if verdict == "good" else right
                kept = _slots(slots) if intent == parsed else {}
                rows[message] = {"text": message, "intent": intent, "slots": kept}
    except sqlite3.Error:  # not a log this version can read
        return []
    finally:
        db.close()
    return list(rows.values())


def _slots(stored: str) -> dict[str, Any]:
    return clean_slots(json.loads(stored))


def _logged_example(tokenizer: Any, row: dict) -> dict:
    """A logged turn whose reply the shopper liked: its parse, as the bot made it."""
    example = parse_example(
        tokenizer, row["text"], row["intent"], row.get("slots", {}), row.get("previous")
    )
    return {**example, "task": "logged"}


def _text(row: dict) -> str:
    return row["text"]


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
