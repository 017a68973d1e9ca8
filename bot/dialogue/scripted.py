"""Scripted conversations with expectations per turn, replayed through the assistant: how
a store tests its own bot end to end (`shopbot eval conversations --data FILE`).

A script file is JSON Lines, one conversation per line:

    {"id": "returns", "turns": [
      {"say": "how long do I have to return something?",
       "expect": {"route": "policy", "section": "Return window", "contains": ["30 days"]}},
      {"say": "and for electronics?", "expect": {"route": "policy"}}]}

Expectations (all optional; a list means any of them): `intent`, `route`, `section` (a
cited policy section), `type` and `category` (of the first product shown), `colour` (every
product shown has it), `price_max` and `price_min` (every product shown is within),
`products` (whether any are shown), `handoff`, `contains` and `not_contains` (text in the
reply, case-insensitive). Every turn is also checked for what must always hold: a reply
that is not empty (unless a person has the conversation) and no false claim about the
products shown (`bot.dialogue.claims`).

A file that holds one JSON array instead is read as recorded dialogues in MG-ShopDial's
layout (`[{"id", "utterances": [{"participant": "Client", "utterance": "..."}, ...]}]`):
the shopper's ("Client") utterances are replayed in order, one turn each, with no
expectations beyond what must always hold. That is how a store replays real chats.

Besides the pass counts, a replay reports what shoppers would find frustrating: turns left
in silence because the conversation was handed to a person nobody asked for (after
repeated failures, or a message read as angry), and turns refused as out of scope or met
with "not sure I understood".

Each conversation runs in a session of its own, under a shopper id made for the run; the
sessions and the events they logged are erased afterwards, so a replay leaves the store's
analytics and learning untouched.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.dialogue.claims import false_claims
from bot.dialogue.turn import Turn

EXPECTATIONS = (
    "intent",
    "route",
    "section",
    "type",
    "category",
    "colour",
    "price_max",
    "price_min",
    "products",
    "handoff",
    "contains",
    "not_contains",
)


@dataclass
class Script:
    id: str
    turns: list[dict[str, Any]]


@dataclass
class TurnResult:
    conversation: str
    turn: int
    message: str
    reply: str
    route: str
    intent: str
    failures: list[str] = field(default_factory=list)


# Routes a shopper experiences as "the bot would not help": refused or asked to rephrase.
REFUSED_ROUTES = ("out_of_scope", "clarify")


def read_scripts(path: Path) -> tuple[list[Script], list[tuple[int, str]]]:
    """The conversations of a script file, and (line, reason) for each line left out (for
    a file of recorded dialogues, the dialogue's number in the array)."""
    with open(path, encoding="utf-8") as handle:
        if handle.read(4096).lstrip().startswith("["):
            handle.seek(0)
            return _recorded_dialogues(handle.read())
    scripts, rejected = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                scripts.append(_script(json.loads(line), number))
            except (json.JSONDecodeError, ValueError, TypeError) as exc:
                rejected.append((number, str(exc)))
    return scripts, rejected


def _recorded_dialogues(text: str) -> tuple[list[Script], list[tuple[int, str]]]:
    """Recorded dialogues in MG-ShopDial's layout, as scripts of their shoppers' turns."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [(exc.lineno, f"not valid JSON: {exc.msg}")]
    scripts, rejected = [], []
    for number, row in enumerate(rows, start=1):
        utterances = row.get("utterances") if isinstance(row, dict) else None
        if not isinstance(utterances, list):
            rejected.append((number, "a dialogue must be an object with 'utterances'"))
            continue
        said = [
            u["utterance"]
            for u in utterances
            if isinstance(u, dict)
            and u.get("participant", "Client") == "Client"
            and isinstance(u.get("utterance"), str)
            and u["utterance"].strip()
        ]
        if not said:
            rejected.append((number, "no shopper ('Client') utterances"))
            continue
        scripts.append(
            Script(str(row.get("id") or f"dialogue-{number}"), [{"say": t} for t in said])
        )
    return scripts, rejected


def _script(row: Any, number: int) -> Script:
    if not isinstance(row, dict):
        raise ValueError("a line must be a JSON object with 'turns'")
    turns = row.get("turns")
    if not isinstance(turns, list) or not turns:
        raise ValueError("'turns' must be a non-empty list")
    for index, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or not isinstance(turn.get("say"), str):
            raise ValueError(f"turn {index}: needs 'say', the shopper's message")
        expect = turn.get("expect", {})
        if not isinstance(expect, dict):
            raise ValueError(f"turn {index}: 'expect' must be an object")
        unknown = sorted(set(expect) - set(EXPECTATIONS))
        if unknown:
            raise ValueError(f"turn {index}: unknown expectation {', '.join(unknown)}")
    return Script(str(row.get("id") or f"line-{number}"), turns)


def check_turn(turn: Turn, expect: dict[str, Any]) -> list[str]:
    """What in this turn's outcome differs from `expect`, and any false claim; [] if none."""
    failures = []
    products = [item.product for item in turn.products]
    first = products[0] if products else None

    def one_of(name: str, actual: Any) -> None:
        wanted = expect.get(name)
        if wanted is None:
            return
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(option, actual) for option in options):
            failures.append(f"{name}: wanted {_show(wanted)}, got {_show(actual)}")

    one_of("intent", turn.parse.intent)
    one_of("route", turn.route)
    if "section" in expect:
        sections = [doc.section for doc in turn.docs]
        options = expect["section"] if isinstance(expect["section"], list) else [expect["section"]]
        if not any(_same(option, section) for option in options for section in sections):
            failures.append(f"section: wanted {_show(expect['section'])}, cited {sections}")
    if "type" in expect:
        one_of("type", (first.attributes or {}).get("type") if first else None)
    if "category" in expect:
        one_of("category", first.category if first else None)
    if "colour" in expect:
        colour = str(expect["colour"]).lower()
        off = [p.id for p in products if colour not in str(p.attributes.get("colour", "")).lower()]
        if not products or off:
            failures.append(f"colour: wanted {colour} on every product, not on {off or 'none'}")
    for name, within in (("price_max", float.__le__), ("price_min", float.__ge__)):
        if name in expect:
            bound = float(expect[name])
            off = [p.id for p in products if p.price is None or not within(p.price, bound)]
            if not products or off:
                failures.append(f"{name}: wanted {bound} for every product, not {off or 'none'}")
    if "products" in expect and bool(products) != bool(expect["products"]):
        failures.append(f"products: wanted {expect['products']}, {len(products)} shown")
    if "handoff" in expect and turn.handoff != bool(expect["handoff"]):
        failures.append(f"handoff: wanted {expect['handoff']}, got {turn.handoff}")
    reply = turn.reply.lower()
    for text in expect.get("contains", []):
        if text.lower() not in reply:
            failures.append(f"contains: {text!r} not in the reply")
    for text in expect.get("not_contains", []):
        if text.lower() in reply:
            failures.append(f"not_contains: {text!r} is in the reply")
    if not turn.reply.strip() and turn.route != "handed_off":
        failures.append("empty reply")
    failures += [f"false claim: {claim}" for claim in false_claims(turn.reply, turn.shown())]
    return failures


def _same(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, bool) or actual is None:
        return wanted == actual
    return str(wanted).strip().lower() == str(actual).strip().lower()


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def replay(
    assistant: Any,
    scripts: Sequence[Script],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run every conversation through `assistant` (an `Assistant`), one session each, and
    count the turns and conversations that meet their expectations, the routes taken, the
    handoffs (with who wanted them) and the turns a handoff nobody asked for silenced;
    `progress(turns)` is called after each turn. The run's sessions and events are erased
    at the end."""
    shopper = "eval-" + secrets.token_hex(8)
    results: list[TurnResult] = []
    routes: Counter[str] = Counter()
    handoffs: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    silenced_unasked = 0
    passed_conversations = 0
    try:
        for script in scripts:
            session = f"eval-{secrets.token_hex(12)}"
            ok, handed_by = True, None
            for index, step in enumerate(script.turns, start=1):
                turn = assistant.respond(step["say"], session, shopper_id=shopper)
                routes[turn.route] += 1
                if turn.route in REFUSED_ROUTES:
                    refused.append(
                        {"conversation": script.id, "turn": index, "message": step["say"],
                         "route": turn.route}
                    )  # fmt: skip
                if turn.route == "handoff":
                    handed_by = turn.handoff_reason or "asked"
                    handoffs.append(
                        {"conversation": script.id, "turn": index, "message": step["say"],
                         "reason": handed_by}
                    )  # fmt: skip
                elif turn.route == "handed_off":
                    silenced_unasked += handed_by != "asked"
                else:
                    handed_by = None
                failures = check_turn(turn, step.get("expect", {}))
                ok = ok and not failures
                results.append(
                    TurnResult(
                        script.id,
                        index,
                        step["say"],
                        turn.reply,
                        turn.route,
                        turn.parse.intent,
                        failures,
                    )
                )
                if progress:
                    progress(1)
            passed_conversations += ok
    finally:
        _, sessions = assistant.sessions.delete_shopper(shopper)
        assistant.shop.events.delete_shopper(shopper, sessions)
    failed = [asdict(result) for result in results if result.failures]
    return {
        "conversations": len(scripts),
        "conversations_passed": passed_conversations,
        "turns": len(results),
        "turns_passed": len(results) - len(failed),
        "false_claims": sum(1 for r in results for f in r.failures if f.startswith("false claim")),
        "routes": dict(routes.most_common()),
        "refused_or_clarify": sum(routes[route] for route in REFUSED_ROUTES),
        "refused": refused,
        "handoffs": handoffs,
        "silenced_unasked": silenced_unasked,
        "failures": failed,
    }
