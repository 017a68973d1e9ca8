"""How upset a message sounds: a person takes over an angry conversation."""

from __future__ import annotations

import re

from bot.nlu.schema import SHOPPING_INTENTS

ANGRY_WORDS = re.compile(
    r"\b(ridiculous|furious|unacceptable|outrageous|outraged|angry|terrible|worst|scam|"
    r"disgusting|useless|pathetic|awful|horrible|fed up|sick of|lawyer|rip[- ]?off)\b",
    re.I,
)


def sounds_angry(text: str) -> int:
    """How many signs of anger a message shows (0 to 3): angry words ("ridiculous",
    "unacceptable", "worst", ...), shouting (most letters upper case, at least 3 words of
    3+ letters), and "!!". Deliberately simple: a complaint with one sign, or any
    non-shopping message with two, goes to a person rather than the bot."""
    letters = [c for c in text if c.isalpha()]
    words = re.findall(r"[A-Za-z]{3,}", text)
    shouting = (
        len(words) >= 3
        and len(letters) >= 10
        and sum(c.isupper() for c in letters) >= 0.7 * len(letters)
    )
    return int(bool(ANGRY_WORDS.search(text))) + int(shouting) + int("!!" in text)


def is_angry(text: str, intent: str) -> bool:
    if intent in SHOPPING_INTENTS:  # "RED SHOES!!!" is enthusiasm
        return False
    signs = sounds_angry(text)
    return signs >= 1 if intent == "complaint" else signs >= 2
