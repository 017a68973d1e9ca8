"""Writing a product reply: the LM phrases it from the records' facts, and `ground_reply`
and `false_claims` check it (service answers quote the policies and need no LM, see
`bot.dialogue.service_answer`).

Replies stream a sentence at a time: each sentence is checked (references resolved from the
records, unsupported names and prices dropped) before it leaves, so nothing unchecked ever
reaches the shopper. When the LM's reply does not survive the check, a plain reply built
from the records alone is sent instead; so it is when the LM server (`lm_url`) fails
mid-reply: the shopper gets the records, the log says why.

A reply may open with a `lead` the caller wrote (for a search, "Here are some rain jackets
you might like.", from `prompts/canned_replies.toml`): it is sent at once and the LM goes on
from it, as it was trained to, so the shopper sees text before the LM has read its prompt.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage

from bot.dialogue.claims import echoed_claims, false_claims, false_traits
from bot.dialogue.grounding import (
    MAX_FACT_PRODUCTS,
    SENTENCE_BREAK,
    GroundedReply,
    ground_reply,
    money,
    plain_text,
    product_facts,
    shown_title,
)
from bot.lm.chat_model import timings_of
from bot.lm.server import LMServerError
from bot.nlu.parser import clean_message
from bot.prompts import chat_prompt, prompt_table, render
from retrieval.catalog import MAX_ATTRIBUTE_CHARS

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"[.!?]\s|\n")
MAX_KIND_CHARS = 30
MAX_KIND_WORDS = 3
_KIND = re.compile(r"[^\W\d_]+(?:[ '-][^\W\d_]+)*")  # letters, with spaces, hyphens, apostrophes


@dataclass
class Reply:
    text: str
    removed: list[str] = field(default_factory=list)
    fallback: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


class ReplyWriter:
    """Phrases replies with any LangChain chat model, grounded in products or policies."""

    def __init__(
        self,
        chat_model: Any,
        store_name: str,
        known_brands: Iterable[str] = (),
        known_traits: Iterable[str] = (),
    ) -> None:
        self.chat_model = chat_model
        self.store_name = store_name
        self.known_brands = sorted({b.lower() for b in known_brands if b})
        self.known_traits = sorted({t.lower() for t in known_traits if t})  # colours, materials

    def messages(self, message: str, products: Sequence[Any], detailed: bool):
        facts = product_facts(products, detailed)
        return chat_prompt("reply").format_messages(
            store=self.store_name, facts=facts, message=clean_message(message)
        )

    def stream(
        self,
        message: str,
        products: Sequence[Any] = (),
        detailed: bool = False,
        removed: list[str] | None = None,
        lead: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Checked sentences, as the LM finishes each one; a record-only reply if none pass.

        Sentences the check drops are appended to `removed` when a list is given. A `lead`
        opens the reply and the LM continues it (when the chat model can continue a reply).
        Product records back no URL, phone number or e-mail address, so a sentence naming
        one is dropped. The LM's figures
        for this reply (tokens, speed) are put in `stats` when a dict is given.
        """
        shown = list(products[:MAX_FACT_PRODUCTS])
        messages = self.messages(message, shown, detailed)
        buffer, sent, opened, failed = "", 0, False, False
        removed = [] if removed is None else removed
        if lead and getattr(self.chat_model, "continues_final_message", False):
            checked = self._check(lead, shown)  # the caller's words: no echo to check
            if checked.text:
                opened = True
                yield checked.text + " "
                messages.append(AIMessage(content=checked.text))
        try:
            for chunk in self.chat_model.stream(messages):
                if stats is not None:
                    stats.update(timings_of(chunk))
                buffer += chunk.content if hasattr(chunk, "content") else str(chunk)
                while (end := _SENTENCE_END.search(buffer)) is not None:
                    sentence, buffer = buffer[: end.end()], buffer[end.end() :]
                    checked = self._check(sentence, shown, message)
                    removed += checked.removed
                    if checked.text:
                        sent += 1
                        yield checked.text + " "
        except LMServerError as exc:
            log.warning("reply from the records alone: %s", exc)
            buffer, failed = "", True  # a sentence the server broke off is not sent
        if buffer.strip():
            checked = self._check(buffer, shown, message)
            removed += checked.removed
            if checked.text:
                sent += 1
                yield checked.text
        if not sent and (failed or not opened):
            yield record_reply(shown)

    def _check(self, text: str, shown: Sequence[Any], message: str = "") -> GroundedReply:
        """`ground_reply`, then the claims check: a sentence stating a rating, review count,
        stock status, comparison, colour, material or size the records do not bear out is
        dropped too (`false_claims`, `false_traits`), and so is one that answers the
        shopper's `message` with its own words no record says (`echoed_claims`)."""
        checked = ground_reply(text, shown, self.known_brands)
        false = false_claims(checked.text, shown) if checked.text else []
        if checked.text:
            traits = false_traits(checked.text, shown, self.known_traits)
            false += [s for s in traits if s not in false]
        if checked.text and message:
            false += [s for s in echoed_claims(checked.text, message, shown) if s not in false]
        if false:
            kept = [s for s in SENTENCE_BREAK.split(checked.text) if s not in false]
            checked = GroundedReply(" ".join(kept), [*checked.removed, *false])
        return checked

    def write(self, message: str, products=(), detailed: bool = False) -> Reply:
        removed: list[str] = []
        stats: dict[str, Any] = {}
        pieces = list(self.stream(message, products, detailed, removed, stats=stats))
        text = "".join(pieces).strip()
        fallback = len(pieces) == 1 and text == record_reply(products[:MAX_FACT_PRODUCTS])
        return Reply(text, removed, fallback, stats)


def product_kind(products: Sequence[Any]) -> str:
    """What the products a reply talks about first are, in the plural, for its lead: "rain
    jackets" when the first two shown (or the only one) are of that type, else "options".
    A type names them only when, as `plain_text`, it is a short plain noun phrase (letters,
    spaces, hyphens and apostrophes; at most 3 words and 30 characters): the feed's text
    must not become a sentence of the reply."""
    first = [product for product in products if product is not None][:2]
    kinds = {_kind((p.attributes or {}).get("type")) for p in first}
    return plural(kinds.pop()) if len(kinds) == 1 and "" not in kinds else "options"


def _kind(value: Any) -> str:
    kind = plain_text(value, MAX_ATTRIBUTE_CHARS).lower()
    plain = _KIND.fullmatch(kind) and len(kind) <= MAX_KIND_CHARS
    plain = plain and len(kind.split()) <= MAX_KIND_WORDS
    return kind if plain else ""


def plural(noun: str) -> str:
    """A product type in the plural: "rain jacket" -> "rain jackets", "dress" -> "dresses",
    "accessory" -> "accessories"; "running shoes" is already plural."""
    if noun.endswith(("ss", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("s"):
        return noun
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    return noun + "s"


def record_reply(products: Sequence[Any]) -> str:
    """A reply from the records alone, for when the LM's reply is unusable; titles as
    `plain_text`."""
    texts = prompt_table("canned_replies.toml")
    products = [p for p in products if p is not None]
    if not products:
        return texts["records_none"]
    listed = "; ".join(f"{shown_title(p)} ({money(p.price, p.currency)})" for p in products[:3])
    return render(texts["records_found"], listed=listed)
