"""Drafts for the parse line: what the LM is likely to write next, read off the message.

The parser's LM writes `intent | key=value; key=value`, copying most values out of the
message, but without the space before them there: " running" in the message is written
"running", a different token, so token-level prompt lookup has nothing to copy. This
drafter works on text. From what the LM has written so far it knows where it is (the slot
opening, a key, a value) and proposes the rest as the LM would tokenize it:

    message: "cozyloft throw for the sofa recommendations"  (brand cozyloft in the catalog)
    written: "search_products"        ->  " | query="
    written: "... | query=th"         ->  "row for the sofa recommendations"
    written: "... query=throw for the sofa;"  ->  " brand=cozyloft"

A value being written is looked up in the message (case-insensitive, at a word start) and
the message from that word on is re-tokenized without its leading space; keys are guessed
from the message (a catalog brand or colour it names, a price, an order id, sort words) in
the order the LM writes them, and completed from the slot names; a value not in the message
is completed from the values its slot takes (the sorts, the catalog's brands and colours).
Drafts are only proposals: `Decoder.stream` keeps what the model itself would have
written, so a wrong guess costs a little compute in a pass, never a different parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from bot.nlu.schema import EMAIL, PRICE_SLOTS, SLOT_NAMES, SORTS

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ORDER_ID = re.compile(r"(?<![\w$.@-])(?=[A-Za-z-]*\d)[A-Za-z0-9-]{5,32}(?![\w@])")
_SIZE = re.compile(r"\bsize\s+([a-z0-9]+(?:\.5)?)\b")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
_REFS = re.compile(r"\b(\d{1,2}|" + "|".join(_ORDINALS) + r")\b")
_REF_INTENTS = ("product_details", "compare_products")
_MIN_WORDS = re.compile(r"\b(over|above|at least|more than|from|starting|min)\b")
_SORT_WORDS = (
    ("cheapest", re.compile(r"cheap|low(est)? price|price low|budget option|affordable")),
    ("most_expensive", re.compile(r"expensive|priciest|premium|high(est)? price|price high")),
    ("best_rated", re.compile(r"rated|rating|best reviewed|reviews")),
    ("most_popular", re.compile(r"popular|best.?sell|trending")),
)
_VALUE_END, _KEY_END = "=", (";", "|")


def guess_slots(
    message: str,
    intent: str,
    vocabulary: dict[str, set[str]] | None = None,
    first_turn: bool = True,
) -> dict[str, str | None]:
    """The slots the LM will probably write for `message`, keys in SLOT_NAMES order, each
    with its value as the LM writes it (None where only the key can be guessed). A query
    is guessed on a first turn, or where nothing else is.

    >>> guess_slots("red trail shoes under $80", "search_products", {"colour": {"red"}})
    {'query': None, 'colour': 'red', 'price_max': '80'}
    >>> guess_slots("compare the second and 3", "compare_products", first_turn=False)
    {'product_refs': '2,3'}
    """
    lowered = message.lower()
    found: dict[str, str | None] = {}
    for name, values in (vocabulary or {}).items():
        named = [v for v in values if v and _names(lowered, v)]
        if named:
            found[name] = max(named, key=len)
    size = _SIZE.search(lowered)
    if size:
        found["size"] = size.group(1)
    ids = _ORDER_ID.findall(message)
    numbers = [f"{float(n):g}" for n in _NUMBER.findall(lowered.replace(",", ""))]
    numbers = [n for n in numbers if not any(n in i for i in ids) and n != found.get("size")]
    if intent in _REF_INTENTS:
        refs = [r if r.isdigit() else str(_ORDINALS.index(r) + 1) for r in _REFS.findall(lowered)]
        if refs:
            found["product_refs"] = ",".join(refs)
    elif len(numbers) >= 2:
        found["price_min"], found["price_max"] = numbers[0], numbers[1]
    elif numbers:
        found["price_min" if _MIN_WORDS.search(lowered) else "price_max"] = numbers[0]
    for sort, words in _SORT_WORDS:
        if words.search(lowered):
            found["sort"] = sort
            break
    if ids:
        found["order_id"] = ids[0]
    email = EMAIL.search(message)
    if email:
        found["email"] = email.group().lower()
    if first_turn or not found:
        found["query"] = None
    return {name: found[name] for name in SLOT_NAMES if name in found}


def _names(lowered: str, value: str) -> bool:
    start = lowered.find(value)
    while start >= 0:
        end = start + len(value)
        if _word_start(lowered, start) and (end == len(lowered) or not lowered[end].isalnum()):
            return True
        start = lowered.find(value, start + 1)
    return False


def _word_start(text: str, index: int) -> bool:
    return index == 0 or not text[index - 1].isalnum()


class ParseDrafter:
    """A `Drafter` for one parse: call it with the tokens written after the intent name.

    One per stream: it remembers the text of the tokens it was given, which must only grow.
    """

    def __init__(
        self,
        tokenizer: Any,
        message: str,
        guesses: dict[str, str | None],
        values: dict[str, Iterable[str]] | None = None,
        max_tokens: int = 12,
    ) -> None:
        self.tokenizer = tokenizer
        self.message = message
        self.guesses = guesses
        self.values = {"sort": SORTS, **(values or {})}
        self.max_tokens = max_tokens
        self._pieces: list[str] = []

    def __call__(self, produced: Sequence[int]) -> list[int]:
        pieces = self._pieces
        del pieces[len(produced) :]
        pieces.extend(self.tokenizer.decode([t]) for t in produced[len(pieces) :])
        start, key, last_key = 0, None, None  # where the text being written began
        for index, piece in enumerate(pieces):
            if piece.endswith(_VALUE_END):
                key = "".join(pieces[start : index + 1]).strip(" =;|")
                start = index + 1
            elif piece.endswith(_KEY_END):
                start, key, last_key = index + 1, None, key or last_key
        written = list(produced[start:])
        if key is not None:
            candidates = self._values(key, "".join(pieces[start:]))
        elif start == 0 and not any("|" in piece for piece in pieces):
            candidates = [" |" + self._plan(None)]
        else:
            candidates = self._keys(last_key)
        for text in candidates:
            tokens = self.tokenizer.encode(text, add_special_tokens=False)
            if len(tokens) > len(written) and tokens[: len(written)] == written:
                return tokens[len(written) :][: self.max_tokens]
        return []

    def _guess(self, key: str) -> str | None:
        guess = self.guesses.get(key)
        if guess is None and key in PRICE_SLOTS:  # the LM may take a bound the other way
            guess = self.guesses.get(PRICE_SLOTS[1 - PRICE_SLOTS.index(key)])
        return guess

    def _plan(self, after: str | None) -> str:
        """The guessed slots after key `after`, as the LM writes them, up to the first value
        that cannot be guessed: " colour=red; price_max=80" or " query=" (no value yet)."""
        order = SLOT_NAMES.index(after) + 1 if after in SLOT_NAMES else 0
        parts = []
        for name, value in self.guesses.items():
            if SLOT_NAMES.index(name) < order:
                continue
            parts.append(f" {name}={value or ''}")
            if value is None:
                break
        return ";".join(parts)

    def _rest(self, key: str) -> str:
        """What follows the value of `key`: the next guessed slots, if any."""
        plan = self._plan(key)
        return f";{plan}" if plan else ""

    def _keys(self, last_key: str | None) -> list[str]:
        """Ways on after a separator: the next guessed slot first, then any later key (with
        its guessed value)."""
        order = SLOT_NAMES.index(last_key) + 1 if last_key in SLOT_NAMES else 0
        plan = self._plan(last_key)
        later = []
        for name in SLOT_NAMES[order:]:
            guess = self._guess(name)
            later.append(f" {name}=" + (guess + self._rest(name) if guess else ""))
        return [plan, *later] if plan else later

    def _values(self, key: str, written: str) -> Iterator[str]:
        """Ways on inside the value of `key`: the guessed value, the values the key can
        take (sorts, the catalog's), then the message from where it has the value so far."""
        rest, wanted = self._rest(key), written.lower()
        guess = self._guess(key)
        if guess and guess.lower().startswith(wanted):
            yield guess + rest
        if not wanted.strip():
            return
        for value in self.values.get(key, ()):
            if value.startswith(wanted):
                yield value + rest
        lowered = self.message.lower()
        start = lowered.find(wanted)
        while start >= 0:
            if _word_start(lowered, start):
                yield self.message[start:] + rest
                yield lowered[start:] + rest
            start = lowered.find(wanted, start + 1)
