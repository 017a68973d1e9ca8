"""Intent and slot evaluation of a parser on labelled rows (`shopbot eval intents`).

Rows are `{"text", "intent"}`, optionally with `"slots"` (what the message states) and
`"previous"` (`{"intent", "slots"}` before it). Reported:
- accuracy, macro-F1 and per-intent precision/recall/F1 over every row;
- out_of_scope_recall: out-of-scope rows recognised as such;
- in_scope_rejected: in-scope rows wrongly called out_of_scope (shopping_rejected for the
  shopping requests alone);
- slot_f1 (micro, over slot=value pairs of the conversation state after the message, the
  free-text query aside) and query_f1 (token overlap of the query), on rows with slots;
- parse latency p50/p95 in milliseconds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.nlu.schema import INTENTS, SHOPPING_INTENTS, clean_slots, merge_slots


def read_labelled_rows(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Rows of an intents JSONL file that can be scored, and (line, reason) for the rest."""
    rows, rejected = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                rejected.append((number, f"not JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                rejected.append((number, "needs a string 'text'"))
            elif row.get("intent") not in INTENTS:
                rejected.append((number, f"unknown intent {row.get('intent')!r}"))
            else:
                if "slots" in row:
                    row["slots"] = clean_slots(
                        row["slots"] if isinstance(row["slots"], dict) else {}
                    )
                rows.append(row)
    return rows, rejected


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 1)


def _pairs(slots: dict[str, Any]) -> set[tuple[str, str]]:
    pairs = set()
    for name, value in slots.items():
        if name == "query":
            continue
        values = value if isinstance(value, list) else [value]
        pairs |= {(name, f"{v:g}" if isinstance(v, float) else str(v).lower()) for v in values}
    return pairs


def _f1(true_positive: int, predicted: int, expected: int) -> float:
    if predicted + expected == 0:
        return 1.0
    return round(2 * true_positive / (predicted + expected), 4)


def evaluate_intents(
    parser: Any,
    rows: Sequence[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run every row through `parser.parse(text, previous)` and score it; `progress(1)` is
    called after each row."""
    confusion: Counter = Counter()
    gold_counts: Counter = Counter()
    predicted_counts: Counter = Counter()
    latencies, slot_tp, slot_pred, slot_gold = [], 0, 0, 0
    query_scores = []
    oos_total = oos_hit = in_scope = rejected = shop_total = shop_rejected = 0
    for row in rows:
        previous = row.get("previous")
        parse = parser.parse(row["text"], previous)
        if progress:
            progress(1)
        latencies.append(parse.elapsed_ms)
        gold, got = row["intent"], parse.intent
        gold_counts[gold] += 1
        predicted_counts[got] += 1
        confusion[(gold, got)] += 1
        if gold == "out_of_scope":
            oos_total += 1
            oos_hit += got == "out_of_scope"
        else:
            in_scope += 1
            rejected += got == "out_of_scope"
            if gold in SHOPPING_INTENTS:
                shop_total += 1
                shop_rejected += got == "out_of_scope"
        if "slots" in row:
            before = (previous or {}).get("slots") or {}
            expected = merge_slots(before, row["slots"]) if previous else row["slots"]
            predicted = merge_slots(before, parse.slots) if previous else parse.slots
            gold_pairs, got_pairs = _pairs(expected), _pairs(predicted)
            slot_tp += len(gold_pairs & got_pairs)
            slot_pred += len(got_pairs)
            slot_gold += len(gold_pairs)
            if expected.get("query"):
                query_scores.append(_query_f1(expected["query"], predicted.get("query", "")))
    per_intent = {}
    for intent in sorted(gold_counts | predicted_counts):
        hit = confusion[(intent, intent)]
        per_intent[intent] = {
            "precision": round(hit / predicted_counts[intent], 4)
            if predicted_counts[intent]
            else 0.0,
            "recall": round(hit / gold_counts[intent], 4) if gold_counts[intent] else 0.0,
            "f1": _f1(hit, predicted_counts[intent], gold_counts[intent]),
            "support": gold_counts[intent],
        }
    total = len(rows)
    scored = [v["f1"] for k, v in per_intent.items() if gold_counts[k]]
    return {
        "examples": total,
        "accuracy": round(sum(confusion[(i, i)] for i in gold_counts) / total, 4) if total else 0.0,
        "macro_f1": round(sum(scored) / len(scored), 4) if scored else 0.0,
        "out_of_scope_recall": round(oos_hit / oos_total, 4) if oos_total else None,
        "in_scope_rejected": round(rejected / in_scope, 4) if in_scope else None,
        "shopping_rejected": round(shop_rejected / shop_total, 4) if shop_total else None,
        "slot_f1": _f1(slot_tp, slot_pred, slot_gold) if slot_gold or slot_pred else None,
        "query_f1": round(sum(query_scores) / len(query_scores), 4) if query_scores else None,
        "latency_ms_p50": percentile(latencies, 0.5),
        "latency_ms_p95": percentile(latencies, 0.95),
        "per_intent": per_intent,
    }


def _query_f1(expected: str, got: str) -> float:
    want, have = Counter(expected.lower().split()), Counter(str(got).lower().split())
    overlap = sum((want & have).values())
    return _f1(overlap, sum(have.values()), sum(want.values()))
