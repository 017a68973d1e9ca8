"""Amounts written in words, as digits: "under a hundred" -> "under 100".

Shoppers write budgets in words ("less than fifty bucks", "two hundred dollars max"). The
parser's LM reads them as numbers, and the slot check keeps a price only when the message
holds that number; with the words turned into digits first, it does.

>>> with_digits("a coffee maker under a hundred, or two hundred and fifty at most")
'a coffee maker under 100, or 250 at most'
>>> with_digits("twenty-five dollars, the second one")
'25 dollars, the second one'
"""

from __future__ import annotations

import re

_UNIT_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TEN_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS)}
_TENS = {word: 10 * value for value, word in enumerate(_TEN_WORDS, start=2)}
_SCALES = {"hundred": 100, "thousand": 1000}
_WORD = re.compile(r"[a-z]+", re.IGNORECASE)


def _may_follow(previous: str, word: str) -> bool:
    """Whether `word` goes on the amount `previous` ends ("two" "hundred", "hundred" "and",
    "twenty" "five"), not starts another ("one and two", "five five")."""
    if previous in ("a", "an"):
        return word in _SCALES
    if word in _SCALES:
        return (
            previous in _UNITS or previous in _TENS or (previous, word) == ("hundred", "thousand")
        )
    if previous in _SCALES:
        return word == "and" or word in _UNITS or word in _TENS
    if previous == "and":
        return word in _UNITS or word in _TENS
    return previous in _TENS and word in _UNITS and 0 < _UNITS[word] < 10


def _value(words: list[str]) -> int:
    """The number the words spell ("two hundred fifty" -> 250)."""
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word == "thousand":
            total, current = (total + (current or 1)) * 1000, 0
    return total + current


def with_digits(text: str) -> str:
    """The text with every amount written in words turned into digits; a lone "one" is
    left as it is ("the second one", "a one-person tent")."""
    words = list(_WORD.finditer(text))
    pieces, written, index = [], 0, 0
    while index < len(words):
        first = words[index].group().lower()
        starts = first in _UNITS or first in _TENS or first in _SCALES
        if first in ("a", "an"):
            starts = index + 1 < len(words) and words[index + 1].group().lower() in _SCALES
        if not starts:
            index += 1
            continue
        end = index
        while end + 1 < len(words):
            gap = text[words[end].end() : words[end + 1].start()]
            nxt = words[end + 1].group().lower()
            if gap.strip(" -") or not _may_follow(words[end].group().lower(), nxt):
                break
            end += 1
        if words[end].group().lower() == "and":
            end -= 1
        spelled = [w.group().lower() for w in words[index : end + 1]]
        if spelled != ["one"] and any(w not in ("a", "an") for w in spelled):
            pieces += [text[written : words[index].start()], str(_value(spelled))]
            written = words[end].end()
        index = end + 1
    return "".join(pieces) + text[written:]
