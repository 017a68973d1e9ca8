"""What the bot did over a period, for the store's operators: conversations and turns, how
many a person had to take over and why, what the bot could not answer (with examples),
searches that found nothing, and how shoppers responded to the products shown.

`bot_metrics` is a pure function of the shoppers' turns (`SessionStore.activity`) and the
feedback events' counts of the same period, so it is tested on seeded rows as they are;
`metrics_table` writes its figures as CSV.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from retrieval.experiments import wilson_interval

UNANSWERED_ROUTES = {"clarify": "not understood", "out_of_scope": "out of scope"}
MAX_EXAMPLES = 5
TOP_INTENTS = 10
HANDOFF_ROUTES = ("handoff",)


def bot_metrics(
    turns: Sequence[dict[str, Any]],
    events: dict[str, int],
    daily_events: dict[str, dict[str, int]] | None = None,
    arm_events: dict[str, dict[str, int]] | None = None,
    arms: dict[str, float] | None = None,
    new_products: Sequence[str] = (),
    impressions_by_product: dict[str, int] | None = None,
) -> dict[str, Any]:
    """`turns`: the period's shopper turns, oldest first (session_id, ts, message, intent,
    route, shown: how many products were shown, handoff_reason on a handoff turn);
    `events`: feedback counts by type (impression, click, like, ...); `daily_events`: the
    same for each UTC day ("2026-12-01": {type: n}), for the `daily` rows; `arm_events`
    the same for each arm of the ranking experiment `arms` (name -> exploration);
    `new_products`: the products added lately, and `impressions_by_product` how often each
    product was shown, for the cold-start exposure."""
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for turn in turns:
        sessions[turn["session_id"]].append(turn)
    handed = {s for s, ts in sessions.items() if any(t["route"] in HANDOFF_ROUTES for t in ts)}
    handed |= {s for s, ts in sessions.items() if any(t["route"] == "handed_off" for t in ts)}
    resolved = [s for s, ts in sessions.items() if s not in handed and not _unanswered(ts[-1])]
    unanswered: dict[str, list[str]] = defaultdict(list)
    for turn in turns:
        kind = _unanswered(turn)
        if kind:
            unanswered[kind].append(turn["message"])
    zero = unanswered.get("no products found", [])
    conversations = len(sessions)
    impressions = events.get("impression", 0)

    def rate(kind: str) -> float:
        return round(events.get(kind, 0) / impressions, 4) if impressions else 0.0

    return {
        "conversations": conversations,
        "turns": len(turns),
        "handoffs": len(handed),
        "handoff_rate": round(len(handed) / conversations, 4) if conversations else 0.0,
        "handoff_reasons": dict(
            Counter(t.get("handoff_reason") or "asked" for t in turns if t["route"] == "handoff")
        ),
        "resolved_without_handoff": (
            round(len(resolved) / conversations, 4) if conversations else 0.0
        ),
        "impressions": impressions,
        "clicks": events.get("click", 0),
        "ctr": rate("click"),
        "add_to_cart_rate": rate("add_to_cart"),
        "purchase_rate": rate("purchase"),
        "likes": events.get("like", 0),
        "dislikes": events.get("dislike", 0),
        "top_intents": [
            {"intent": intent, "turns": count}
            for intent, count in Counter(t["intent"] for t in turns).most_common(TOP_INTENTS)
        ],
        "unanswered": [
            {"kind": kind, "turns": len(messages), "examples": _examples(messages)}
            for kind, messages in sorted(unanswered.items(), key=lambda item: -len(item[1]))
        ],
        "zero_result_searches": len(zero),
        "daily": _daily(turns, daily_events or {}),
        "experiment": _experiment(arms or {}, arm_events or {}),
        "cold_start": _cold_start(new_products, impressions_by_product or {}),
    }


def _cold_start(new: Sequence[str], shown: dict[str, int]) -> dict[str, Any]:
    """How much of the shoppers' attention products added lately get: how many there are,
    how many were shown at all, and their share of all impressions."""
    total = sum(shown.values())
    new_shown = [product for product in new if shown.get(product)]
    return {
        "new_products": len(new),
        "new_products_shown": len(new_shown),
        "impression_share": round(sum(shown[p] for p in new_shown) / total, 4) if total else 0.0,
    }


def _experiment(arms: dict[str, float], events: dict[str, dict[str, int]]) -> list[dict]:
    """Each arm of the ranking experiment (and any arm of the period no longer configured):
    its exploration, impressions, clicks and click-through with a 95% interval."""
    rows = []
    for arm in sorted(set(arms) | set(events)):
        shown = events.get(arm, {}).get("impression", 0)
        clicks = events.get(arm, {}).get("click", 0)
        low, high = wilson_interval(clicks, shown)
        rows.append(
            {
                "arm": arm,
                "exploration": arms.get(arm),
                "impressions": shown,
                "clicks": clicks,
                "ctr": round(clicks / shown, 4) if shown else 0.0,
                "ctr_low": low,
                "ctr_high": high,
                "purchases": events.get(arm, {}).get("purchase", 0),
            }
        )
    return rows


def _daily(turns: Sequence[dict[str, Any]], events: dict[str, dict[str, int]]) -> list[dict]:
    """One row per UTC day with turns or events: conversations active, turns, handoffs,
    impressions, clicks and click-through of the products shown."""
    sessions: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, Counter] = defaultdict(Counter)
    for turn in turns:
        day = datetime.fromtimestamp(turn["ts"], UTC).date().isoformat()
        sessions[day].add(turn["session_id"])
        counts[day]["turns"] += 1
        counts[day]["handoffs"] += turn["route"] in HANDOFF_ROUTES
    rows = []
    for day in sorted(set(counts) | set(events)):
        shown, clicks = (
            events.get(day, {}).get("impression", 0),
            events.get(day, {}).get("click", 0),
        )
        rows.append(
            {
                "date": day,
                "conversations": len(sessions[day]),
                "turns": counts[day]["turns"],
                "handoffs": counts[day]["handoffs"],
                "impressions": shown,
                "clicks": clicks,
                "ctr": round(clicks / shown, 4) if shown else 0.0,
            }
        )
    return rows


def metrics_table(figures: dict[str, Any]) -> str:
    """The figures of `bot_metrics` (with its period) as CSV: the daily rows first, then a
    blank line and one "figure,value" row for each number, handoff reason and top intent."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ("date", "conversations", "turns", "handoffs", "impressions", "clicks", "ctr")
    writer.writerow(columns)
    for row in figures.get("daily", []):
        writer.writerow([row[name] for name in columns])
    writer.writerow([])
    writer.writerow(("figure", "value"))
    for name, value in figures.items():
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            writer.writerow((name, value))
    for reason, count in figures.get("handoff_reasons", {}).items():
        writer.writerow((f"handoff_reason:{reason}", count))
    for row in figures.get("top_intents", []):
        writer.writerow((f"intent:{row['intent']}", row["turns"]))
    for row in figures.get("unanswered", []):
        writer.writerow((f"unanswered:{row['kind']}", row["turns"]))
    for name, value in (figures.get("cold_start") or {}).items():
        writer.writerow((f"cold_start:{name}", value))
    for row in figures.get("experiment", []):
        for name in ("impressions", "clicks", "ctr", "ctr_low", "ctr_high"):
            writer.writerow((f"arm:{row['arm']}:{name}", row[name]))
    return out.getvalue()


def _unanswered(turn: dict[str, Any]) -> str | None:
    if turn["route"] in UNANSWERED_ROUTES:
        return UNANSWERED_ROUTES[turn["route"]]
    if turn["route"] == "search" and not turn["shown"]:
        return "no products found"
    return None


def _examples(messages: list[str]) -> list[str]:
    """The most frequent distinct messages, newest first among equals."""
    counts = Counter(m for m in messages if m)
    order = {m: i for i, m in enumerate(messages)}
    ranked = sorted(counts, key=lambda m: (-counts[m], -order[m]))
    return ranked[:MAX_EXAMPLES]
