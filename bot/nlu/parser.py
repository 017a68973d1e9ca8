"""Intent and slot parsing: a shopper's message (+ the conversation so far) -> a valid Parse.

The LM (with the shipped LoRA adapter) writes one line, `intent | slot=value; ...`
(`bot/nlu/schema.py`). Decoding is constrained where it matters and checked after:

1. The intent is decoded through a trie of the intent names, so it is always one of them;
   its probability under the model is the parse's confidence.
2. The slots are decoded greedily, with drafts read off the message (`bot/parse_drafting.py`)
   checked several tokens a pass; the system prompt's KV cache is computed once per parser
   and copied into each parse. Neither changes what is decoded, only how many forward
   passes it takes (about 4 a shopping turn, prompt included, where plain greedy takes 12).
   The slots are then read back with `read_parse` (malformed parts are
   dropped, never raised) and checked against the message and the catalog: a price, order
   id or e-mail the message does not contain is dropped; a category, brand, colour or
   material is mapped onto the catalog's own value (close spellings too) or dropped. Amounts
   written in words count as the numbers they spell ("under a hundred": 100); an age is no
   price ("toys for kids under 5").

With a `server` (`bot.lm.server.CompletionServer`, llama.cpp or vLLM), the same prompt is
decoded there instead, greedily under a GBNF grammar of the same line (`parse_grammar`): an
intent name, then slots of the schema. The server reports each token's log-probability
before the grammar masked anything, so the confidence is the in-process one: the sum over
the choices the intent trie leaves open. The checks after decoding are the same.

Messages are cleaned first (control characters out, long ones cut), so junk, empty or huge
input gets a bounded parse. Nothing raises to the caller, except `LMServerError` when the
server cannot be reached or answers badly.
"""

from __future__ import annotations

import difflib
import math
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.lm.decoding import Decoder, PromptPrefix, TokenTrie, stop_token_ids
from bot.lm.loading import LoadedLM
from bot.lm.server import LMServerError
from bot.nlu.amounts import with_digits
from bot.nlu.drafting import ParseDrafter, guess_slots
from bot.nlu.schema import (
    EMAIL,
    INTENTS,
    PRICE_SLOTS,
    SLOT_NAMES,
    SORTS,
    TEXT_SLOTS,
    format_parse,
    read_parse,
)
from bot.prompts import prompt_table, render, render_chat_text

if TYPE_CHECKING:
    from bot.lm.server import CompletionServer
    from bot.nlu.second_opinion import SecondOpinion

READ_MESSAGE_CHARS = 400  # what the parser and the turn read of a message
MAX_SLOT_TOKENS = 40
MAX_PARSE_TOKENS = 48  # on a server: the intent's tokens and the slots'
CHECKED_VALUE_SLOTS = ("category", "brand", "colour", "material")


@dataclass
class Parse:
    """What the shopper wants: an intent from INTENTS, its slots, and how sure the LM is."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0
    raw: str = ""
    elapsed_ms: float = 0.0
    passes: int = 0  # forward passes of the LM it took
    overruled: str = ""  # the LM's intent, when the second opinion took its place
    head_search: float = 0.0  # the second opinion's product search, where the LM read none

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "slots": self.slots, "confidence": self.confidence}


@dataclass
class SlotVocabulary:
    """The catalog's own slot values, lower-cased, to check what the LM wrote against."""

    values: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_products(cls, products: Iterable[Any]) -> SlotVocabulary:
        values: dict[str, set[str]] = {name: set() for name in CHECKED_VALUE_SLOTS}
        for product in products:
            if product.category:
                values["category"].add(product.category.lower())
            if product.brand:
                values["brand"].add(product.brand.lower())
            for name in ("colour", "material"):
                value = (product.attributes or {}).get(name)
                if value:
                    values[name].add(str(value).lower())
        return cls(values)

    def match(self, slot: str, value: str) -> str | None:
        """The catalog value `value` stands for (itself, or a close spelling), else None."""
        known = self.values.get(slot)
        if not known:
            return value
        if value in known:
            return value
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.8)
        return close[0] if close else None


def clean_message(text: Any, limit: int = READ_MESSAGE_CHARS) -> str:
    """Printable text only, whitespace collapsed, cut to `limit` characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = str(text or "")[: limit * 4]
    kept = (c for c in text if c.isspace() or unicodedata.category(c)[0] not in "CZ")
    return " ".join("".join(kept).replace("\ufffd", " ").split())[:limit]


def has_words(text: str) -> bool:
    return any(c.isalnum() for c in text)


def context_line(previous: dict[str, Any] | None) -> str:
    """The conversation so far, as the parser prompt shows it (`prompts/facts.toml`; empty on
    a first turn)."""
    if not previous or not previous.get("intent"):
        return ""
    parse = format_parse(previous["intent"], previous.get("slots") or {})
    return render(prompt_table("facts.toml")["parse"]["before"], parse=parse)


class IntentParser:
    """Parses messages with a loaded LM, or on a `server` (then `lm` needs only its
    tokenizer: `bot.lm.loading.load_tokenizer`). `parse()` never raises, except
    `LMServerError` from a server."""

    def __init__(
        self,
        lm: LoadedLM,
        vocabulary: SlotVocabulary | None = None,
        intents: Iterable[str] = INTENTS,
        draft_tokens: int = 12,
        reuse_prefix: bool = True,
        scheduler: Any = None,
        second_opinion: SecondOpinion | None = None,
        server: CompletionServer | None = None,
    ) -> None:
        self.lm = lm
        self.server = server
        self.second_opinion = second_opinion
        self.scheduler = scheduler  # the chat service's `PassScheduler`, if any
        self.draft_tokens = draft_tokens
        self.vocabulary = vocabulary or SlotVocabulary()
        self.intents = list(intents)
        self.trie = TokenTrie.build(lm.tokenizer, self.intents)
        self.stops = stop_token_ids(lm.tokenizer, "\n")
        self.prefix = PromptPrefix(self._shared_prompt_ids()) if reuse_prefix else None
        self.grammar = parse_grammar(self.intents)

    def _shared_prompt_ids(self) -> list[int]:
        """The prompt tokens every parse starts with: those two unlike prompts share."""
        first = self.prompt_ids("a")
        other = self.prompt_ids("b", {"intent": "greeting"})
        shared = 0
        while shared < min(len(first), len(other)) and first[shared] == other[shared]:
            shared += 1
        return first[:shared]

    def prompt_ids(self, message: str, previous: dict[str, Any] | None = None) -> list[int]:
        text = render_chat_text(
            self.lm.tokenizer, "parse_intent", context=context_line(previous), message=message
        )
        return self.lm.tokenizer.encode(text, add_special_tokens=False)

    def parse(self, message: Any, previous: dict[str, Any] | None = None) -> Parse:
        started = time.perf_counter()
        text = clean_message(message)
        if not has_words(text):
            return Parse("out_of_scope", {}, 0.0, "", _ms(started))
        if self.server is None:
            intent, logprob, raw, passes = self.decode_here(text, previous)
        else:
            intent, logprob, raw, passes = self.decode_on_server(text, previous)
        _, slots = read_parse(raw)
        slots = self.check_slots(slots, text)
        confidence = round(math.exp(logprob), 4)
        parse = Parse(intent, slots, confidence, raw, _ms(started), passes)
        if self.second_opinion is not None:
            parse = self.second_opinion.review(parse, text)
        return parse

    def decode_here(
        self, text: str, previous: dict[str, Any] | None
    ) -> tuple[str, float, str, int]:
        """(intent, its log-probability, the parse line, forward passes) from the loaded LM."""
        decoder = Decoder(self.lm, self.draft_tokens, self.scheduler)
        logprobs = decoder.prefill(self.prompt_ids(text, previous), self.prefix)
        intent, logprob, lead = decoder.choose(self.trie, logprobs)
        drafter = self.drafter(text, intent, previous)
        stream = decoder.stream(None, MAX_SLOT_TOKENS, self.stops, drafter, lead=lead)
        tokens = [token for token, _ in stream]
        raw = intent + self.lm.tokenizer.decode(tokens, skip_special_tokens=True)
        return intent, logprob, raw, decoder.passes

    def decode_on_server(
        self, text: str, previous: dict[str, Any] | None
    ) -> tuple[str, float, str, int]:
        """`decode_here`'s answer from the server, decoded under `self.grammar` (no
        forward passes here). The grammar admits only intent names, so the line's intent
        is always one of them."""
        prompt = self.prompt_ids(text, previous)
        done = self.server.complete(prompt, self.grammar, MAX_PARSE_TOKENS, ["\n"])
        intent = done.text.partition("|")[0].strip()
        if intent not in self.intents:  # a server that ignored the grammar
            raise LMServerError(
                f"the language model server at {self.server.url} wrote no intent name "
                f"({done.text[:60]!r}): does it take GBNF grammars?"
            )
        return intent, self.intent_logprob(done.tokens, intent), done.text.strip(), 0

    def intent_logprob(self, tokens: list[tuple[int, float]], intent: str) -> float:
        """The log-probability of the intent's choices among `tokens` (id, log-prob), as
        `Decoder.choose` counts it: tokens that were the only way on in the intent trie add
        nothing. A server may spell a name in other tokens than the trie's; from there on
        every token of the name counts."""
        node: TokenTrie | None = self.trie
        total, spelled = 0.0, []
        for token, logprob in tokens:
            if node is not None and node.value is not None:
                break
            if node is not None and token in node.children:
                total += logprob if len(node.children) > 1 else 0.0
                node = node.children[token]
                spelled.append(token)
                continue
            if len(self.lm.tokenizer.decode(spelled)) >= len(intent):
                break
            node = None
            total += logprob
            spelled.append(token)
        return total

    def drafter(self, message: str, intent: str, previous: dict[str, Any] | None) -> Any:
        """What proposes the slot text's tokens (nothing, with draft_tokens=0)."""
        if not self.draft_tokens:
            return lambda produced: []
        first_turn = not (previous and previous.get("intent"))
        values = {k: v for k, v in self.vocabulary.values.items() if k in CHECKED_VALUE_SLOTS}
        guesses = guess_slots(message, intent, values, first_turn)
        return ParseDrafter(self.lm.tokenizer, message, guesses, values, self.draft_tokens)

    def check_slots(self, slots: dict[str, Any], message: str) -> dict[str, Any]:
        """Keep what the message and the catalog support; add ids the LM missed."""
        lowered = message.lower()
        priced = with_digits(lowered)  # "under a hundred": the 100 the LM read is said
        numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", priced.replace(",", ""))}
        checked: dict[str, Any] = {}
        for name, value in slots.items():
            if name in PRICE_SLOTS and (value not in numbers or _said_as_age(value, priced)):
                continue
            said = _price_word_slot(f"{float(value):g}", priced) if name in PRICE_SLOTS else None
            if said and said not in slots:  # "my budget is $15": at most, whatever the LM read
                name = said
            if name in ("order_id", "email") and str(value).lower() not in lowered:
                continue
            if name in CHECKED_VALUE_SLOTS:
                value = self.vocabulary.match(name, value)
                if value is None:
                    continue
            if name == "size":
                price = _price_said_as_size(str(value), priced)
                if price is not None:  # "boots under 150": a price, not a size
                    checked.setdefault(price[0], price[1])
                    continue
                sizes = self.vocabulary.values.get("size")
                value = _size_code(str(value), sizes)
                if sizes and str(value).strip().lower() not in sizes:
                    continue  # a size no product comes in
                if not _says_size(str(value).strip().lower(), priced):
                    continue  # "5" read out of "under 150": a size the message does not say
            checked[name] = value
        if "size" not in checked and (size := _size_said(priced, self.vocabulary.values)):
            checked["size"] = size  # "size medium", "do you have it in large?"
        email = EMAIL.search(message)
        if email and "email" not in checked:
            checked["email"] = email.group().lower()
        no_bound = not any(name in checked for name in (*PRICE_SLOTS, "sort"))
        if no_bound and _CHEAPER.search(lowered):  # "something cheaper, in blue"
            checked["sort"] = "cheapest"
        return checked


def parse_grammar(intents: Iterable[str] = INTENTS) -> str:
    """The GBNF grammar of a parse line (`bot/nlu/schema.py`), as llama.cpp and vLLM read it:
    an intent name, then optionally ` | ` and `name=value` slots joined by `; `, each value
    of its slot's type, and the newline that ends it.

    >>> print(parse_grammar(["greeting", "thanks"]).splitlines()[1])
    intent ::= "greeting" | "thanks"
    """
    values = {name: "text" for name in TEXT_SLOTS}
    values.update(price_min="number", price_max="number", sort="sort", product_refs="refs")
    values.update(order_id="orderid", email="email")
    slots = " | ".join(f'"{name}=" {values[name]}' for name in SLOT_NAMES)
    return "\n".join(
        [
            'root ::= intent (" | " slot ("; " slot)*)? "\\n"?',
            "intent ::= " + " | ".join(f'"{name}"' for name in intents),
            f"slot ::= {slots}",
            "text ::= [^;\\n]+",
            'number ::= [0-9]+ ("." [0-9]+)?',
            "sort ::= " + " | ".join(f'"{name}"' for name in SORTS),
            'refs ::= [0-9]+ ("," [0-9]+)*',
            "orderid ::= [A-Za-z0-9-]+",
            "email ::= [^;\\n ]+",
        ]
    )


# "Cheaper" with no price named: the cheapest of what fits first (the LM often drops it
# when the message asks for something else too).
_CHEAPER = re.compile(r"\b(?:cheaper|less expensive|more affordable|lower[- ]priced)\b")


# The words around a number that make it a price bound: before it ("under 80", "nothing
# over $60") or after it ("$80 max", "50 or more"). A bound negated ("nothing over",
# "not more than") is checked first: it is the other bound.
_PRICE_WORDS = (
    (
        "price_max",
        r"(?:nothing|not|no(?:thing)? more than|never)\s+(?:over|above|more than)"
        r"|under|below|less than|cheaper than|max(?:imum)?|up to|at most|no more than"
        r"|budget(?: is| of)?|can spend|afford",
        r"max(?:imum)?|tops|or less|or under|at most|at the most",
    ),
    ("price_min", r"over|above|more than|at least|min(?:imum)?|from", r"or more|plus|and up"),
)


def _price_word_slot(number: str, message: str) -> str | None:
    """The price slot the words around `number` in the message name ("under 80", "$80 max"
    -> price_max, "over 80" -> price_min), or None when they name neither."""
    amount = rf"\$?\s*{re.escape(number)}(?:\.0+)?"
    for slot, before, after in _PRICE_WORDS:
        if re.search(rf"\b(?:{before})\s*{amount}\b", message):
            return slot
        if re.search(rf"{amount}\s*(?:dollars\s*)?(?:{after})\b", message):
            return slot
    return None


# A number that is someone's age, not a price: "toys for kids under 5", "a 10 year old".
_AGE = (
    r"(?:kids?|children|child|toddlers?|babies|baby|boys?|girls?|ages?|aged)"
    r"\s+(?:under|over|below|above|from|of)?\s*{n}\b(?!\s*(?:dollars|bucks))"
    r"|\b{n}\s*(?:-\s*)?(?:years?|yrs?|months?|yo)\b"
)


def _said_as_age(value: float, message: str) -> bool:
    """Whether the message says the number as an age ("kids under 5", "a 14 year old")."""
    number = rf"(?<!\$){re.escape(f'{value:g}')}(?:\.0+)?"
    return bool(re.search(_AGE.format(n=number), message))


def _price_said_as_size(value: str, message: str) -> tuple[str, float] | None:
    """("price_max", 150.0) when the number the LM took for a size has a price word beside
    it in the message ("hiking boots under 150"); None otherwise."""
    if not re.fullmatch(r"\d+(?:\.\d+)?", value.strip()):
        return None
    slot = _price_word_slot(value.strip(), message)
    return (slot, float(value)) if slot else None


_SIZE_WORDS = {
    "xs": r"extra[- ]?small|x-small",
    "s": "small",
    "m": "medium",
    "l": "large",
    "xl": r"extra[- ]?large|x-large",
    "xxl": r"2xl|xx-large",
}


def _size_code(value: str, sizes: Iterable[str] | None) -> str:
    """The catalog's code for a size said in words ("medium" -> "m"), when it has that code."""
    spoken = value.strip().lower()
    for code, words in _SIZE_WORDS.items():
        if code in (sizes or ()) and re.fullmatch(words, spoken):
            return code
    return value


def _size_said(message: str, values: dict[str, set[str]]) -> str | None:
    """A size the catalog has that the message asks for outright, which the LM missed:
    "size medium", "size 10", "in large please", "do you have an xl?"."""
    sizes = values.get("size") or set()
    for code in sorted(_SIZE_WORDS, key=len, reverse=True):
        said = f"{_SIZE_WORDS[code]}|{code}"
        if code in sizes and (
            re.search(rf"\bsize\s+(?:{said})\b", message)
            or re.search(
                rf"\b(?:in|an?)\s+(?:size\s+)?(?:{said})(?:\s+(?:size|one|ones|please|pls))?"
                r"\s*[.!?]*\s*$",
                message,
            )
        ):
            return code
    number = re.search(r"\bsize\s+(\d+(?:\.5)?)\b", message)
    return number.group(1) if number and number.group(1) in sizes else None


def _says_size(size: str, message: str) -> bool:
    """Whether the message names `size` as a word of its own ("size 10", "a medium")."""
    said = re.escape(size)
    if size in _SIZE_WORDS:
        said += "|" + _SIZE_WORDS[size]
    return bool(re.search(rf"(?<![\w.])(?:{said})(?!\w|\.\w)", message))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
