"""The parser's second opinion: an intent classifier over the message's sentence embedding.

The LM reads wording it was trained on; when it calls a message out of scope, or is unsure
of it, `IntentHead` (a softmax layer trained by `shopbot finetune intent-head` on the
catalog embedder's vectors of the same training utterances) reads its meaning. Its
customer-service intent wins when it is at least `Settings.second_opinion` probable:
"been waiting forever for the money from my return" asks where a refund is, "this is
going nowhere, get me a real person" asks for a person. It never turns a message into a
product search, a greeting or "out of scope": the catalog's closeness and the parser decide
those. Where it reads a product search and the LM read none, it says so (`Parse.head_search`):
"my home office is so dim i get headaches reading" tells a need rather than naming a
product (the LM learnt shopping from requests that name one), and the chat searches it at a
lower closeness to the catalog (`bot.dialogue.products.searched_anyway`). Its search
reading then stands in for any service intent it ranks lower: "the jeans i got are way too
tight, can i swap them" is searched, where the previous head called it a change of order.
(Phone calls stay hard: the out-of-scope training rows are full of "call mom".)

    head = IntentHead.load(settings.intent_head_path, settings.embedding_model)
    head.rank(vector)[:2]      # [("contact_customer_service", 0.91), ("complaint", 0.03)]
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.nlu.schema import CUSTOMER_SERVICE_INTENTS, SHOPPING_INTENTS

log = logging.getLogger("shopbot.nlu")

HEAD_FILE = "intent_head.npz"
HEAD_CARD = "intent_head.json"


class IntentHead:
    """Intent probabilities for one sentence vector."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, intents: list[str]) -> None:
        self.weight = weight
        self.bias = bias
        self.intents = intents

    @classmethod
    def load(cls, folder: Path | None, embedding_model: str) -> IntentHead | None:
        """The head in `folder` when it was trained for `embedding_model`; None (and the
        parser alone decides) when there is none or it was trained for another model."""
        if folder is None or not (Path(folder) / HEAD_FILE).is_file():
            return None
        card_path = Path(folder) / HEAD_CARD
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
        if card.get("embedding_model") != embedding_model:
            log.warning(
                "intent head in %s was trained for embedding model %r, not %r: not used",
                folder,
                card.get("embedding_model"),
                embedding_model,
            )
            return None
        with np.load(Path(folder) / HEAD_FILE) as saved:
            return cls(saved["weight"], saved["bias"], [str(i) for i in saved["intents"]])

    def rank(self, vector: np.ndarray) -> list[tuple[str, float]]:
        """Every intent with its probability, most probable first; [] for a vector of
        another size than the head's (an embedder it was not trained for)."""
        if vector.shape[-1] != self.weight.shape[0]:
            return []
        logits = vector @ self.weight + self.bias
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        return [(self.intents[i], round(float(probs[i]), 4)) for i in order]


def overruling_intent(ranked: list[tuple[str, float]], threshold: float) -> tuple[str, float]:
    """The head's customer-service intent and its probability when it is the most probable
    and reaches `threshold`; ("", 0.0) otherwise."""
    if not ranked:
        return "", 0.0
    intent, probability = ranked[0]
    if intent in CUSTOMER_SERVICE_INTENTS and probability >= threshold:
        return intent, probability
    return "", 0.0


@dataclass
class SecondOpinion:
    """Where the LM calls a message out of scope or is below `unsure` confidence, the
    head's customer-service intent wins when it is at least `threshold` probable. `embed`
    gives a message's sentence vector (the catalog embedder's, cached for the turn)."""

    head: IntentHead
    embed: Callable[[str], Any]
    threshold: float
    unsure: float

    @classmethod
    def open(cls, settings: Any, embed: Callable[[str], Any]) -> SecondOpinion | None:
        """From the settings (`intent_head`, `second_opinion`, `parse_confidence`); None
        when there is no head for the store's embedding model."""
        head = IntentHead.load(settings.intent_head_path, settings.embedding_model)
        if head is None:
            return None
        return cls(head, embed, settings.second_opinion, settings.parse_confidence)

    def review(self, parse: Any, text: str) -> Any:
        """`parse` (a `bot.nlu.parser.Parse`), or the head's intent in its place, with the
        LM's in `overruled` and only the order id and e-mail of its slots kept; or, where
        the head ranks a product search first and the LM read no shopping, `parse` with the
        head's probability of it in `head_search`."""
        if parse.intent != "out_of_scope" and parse.confidence >= self.unsure:
            return parse
        ranked = self.head.rank(self.embed(text))
        if ranked and ranked[0][0] == "search_products" and parse.intent not in SHOPPING_INTENTS:
            return dataclasses.replace(parse, head_search=ranked[0][1])
        intent, probability = overruling_intent(ranked, self.threshold)
        if not intent or intent == parse.intent:
            return parse
        slots = {k: v for k, v in parse.slots.items() if k in ("order_id", "email")}
        return dataclasses.replace(
            parse, intent=intent, slots=slots, confidence=probability, overruled=parse.intent
        )
