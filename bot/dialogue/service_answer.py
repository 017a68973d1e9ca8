"""Service questions answered from the policy documents, in the store's own words.

The answer is the passages (sentences, list items) of the sections retrieval found that
are closest to the question, quoted in the order the store wrote them, with the sections
cited. Nothing is paraphrased, so a fee, a deadline or a threshold is always the one the
policy states: a small LM's rewording ("Express shipping is available for orders of $50 or
more") is exactly the error this avoids. A list is quoted whole when it is short (the three
delivery options, the items that cannot be returned), since one item of it alone misleads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.dialogue.signals import service_words
from bot.nlu.schema import SHOPPING_INTENTS

POLICY_SECTIONS = 6  # sections retrieved for a question; their passages are ranked
MAX_ANSWER_CHARS = 480  # a few sentences: the citation links to the rest
MAX_LIST_CHARS = 520  # a list this short is quoted whole
MAX_PASSAGES = 3
CLOSE_TO_BEST = 0.12  # passages within this cosine of the best one join the answer
MAX_FOLLOW_UP_WORDS = 12  # a message this short after a policy answer may continue it
SERVICE_WORDS_EASE = 0.1  # how much less closeness a message with service words needs
QUESTION_WEIGHT = 1.0  # how much a section's nearest listed question lifts its passages
MIN_CLAUSE_WORDS = 3  # a sentence of a longer message matched on its own (`clauses`)
MAX_CLAUSES = 3  # the last ones: the question usually comes after the story
_CLAUSE_END = re.compile(r"(?<=[.?!])\s+|[\n;]+|\s+(?:but|so|and then)\s+", re.I)
# "what about electronics?", "and for a standing desk?", "and headphones?", "ugh ok. what if
# i want a half size up instead" right after a policy answer asks the same question of
# another thing or case, even when that thing is a product.
_CONTINUES = re.compile(
    r"^\s*(?:(?:and|ok|okay|so|ugh|hmm|well|but)\b[\s,.!]*)*"
    r"(?:(?:what|how) about\b|what if\b|and (?:for|with|if)\b"
    r"|and\s+(?!(?:thanks?|thank|bye|goodbye|ok|okay|you|do|does|can|is|are|how|what|where|when"
    r"|who|why|i|i'm|im|my)\b)[\w'-]+(?:\s+[\w'-]+){0,3}\s*\??\s*$)",
    re.I,
)


@dataclass
class ServiceAnswer:
    text: str
    docs: list[Any] = field(default_factory=list)  # the sections quoted, best first


@dataclass
class PolicyMatch:
    """How close a question is to the policies: its closest section's text (`section`), its
    closest passage (`passage`) and its closest question a section lists (`asked`), all
    cosines, and the passages (`passages`) ranked for the answer, best first."""

    section: float
    passages: list[Any]
    passage: float = 0.0
    asked: float = 0.0

    def close(self, section_match: float, passage_match: float, question_match: float) -> bool:
        """Whether any closeness reaches its threshold (`Settings.policy_match`,
        `Settings.policy_passage_match`, `Settings.policy_question_match`)."""
        return (
            self.section >= section_match
            or self.passage >= passage_match
            or self.asked >= question_match
        )

    @property
    def best(self) -> float:
        return max(self.section, self.passage, self.asked)


def match_policies(shop: Any, question: str) -> PolicyMatch:
    """The sections closest to `question` and their passages ranked for it: a passage by its
    closeness plus `QUESTION_WEIGHT` times its section's nearest listed question's, so
    "can i return it without my aunt finding out" quotes "Gift returns", whose questions
    are worded so, rather than a "cannot be returned" item that shares the word. A message
    of several sentences is also matched sentence by sentence against the listed
    questions: the story around a question ("they got delivered oct 6th. its nov 10 now.")
    blurs the vector of the whole."""
    hits = shop.policy_hits(question, k=POLICY_SECTIONS)
    if not hits:
        return PolicyMatch(0.0, [])
    asked = {hit.doc.id: hit.asked for hit in hits}
    docs = {hit.doc.id: hit.doc for hit in hits}
    for clause in clauses(question):
        for hit in shop.policy_hits(clause, k=POLICY_SECTIONS):
            if hit.asked > asked.get(hit.doc.id, 0.0):
                asked[hit.doc.id] = hit.asked
                docs.setdefault(hit.doc.id, hit.doc)
    found = shop.policy_passages(question, list(docs.values()))
    ranked = [replace(p, score=p.score + QUESTION_WEIGHT * asked[p.doc.id]) for p in found]
    return PolicyMatch(
        section=max(hit.by_text for hit in hits),
        passages=sorted(ranked, key=lambda p: -p.score),
        passage=max((p.score for p in found), default=0.0),
        asked=max(asked.values()),
    )


def clauses(text: str) -> list[str]:
    """The sentences of a message of several, each of `MIN_CLAUSE_WORDS` words or more
    (none for a message of one): "bought boots. too late to send them back?" ->
    ["too late to send them back?"] when the first is too short."""
    parts = [part.strip() for part in _CLAUSE_END.split(text) if part.strip()]
    if len(parts) < 2:
        return []
    return [part for part in parts if len(part.split()) >= MIN_CLAUSE_WORDS][-MAX_CLAUSES:]


def belongs_to_policies(
    found: PolicyMatch,
    message: str,
    sure_search: bool,
    catalog_match: Callable[[], float],
    settings: Any,
) -> bool:
    """Whether a message is a service question, by its closeness to the policies (`found`)
    and to the catalog (`catalog_match()`, called only when needed). A message with service
    words (a problem, "will you ...", a contact question: `signals.service_words`) needs
    `SERVICE_WORDS_EASE` less closeness and is not weighed against the catalog; a request
    the parser is sure is a product search (`sure_search`) must be closer to a whole section
    than to any product ("shoes I can stand in all day" is near a returns sentence about
    shoes); anything else must reach `settings.policy_match` (a section),
    `settings.policy_passage_match` (a passage) or `settings.policy_question_match` (a
    question a section lists) and be closer to the policies than to any product."""
    thresholds = (
        settings.policy_match,
        settings.policy_passage_match,
        settings.policy_question_match,
    )
    if service_words(message):
        return found.close(*(threshold - SERVICE_WORDS_EASE for threshold in thresholds))
    if sure_search:
        return found.section >= settings.policy_match and found.section > catalog_match()
    return found.close(*thresholds) and found.best > catalog_match()


class PolicyDesk:
    """Answers service questions from the policies, when the message belongs there."""

    def __init__(self, settings: Any, shop: Any) -> None:
        self.settings = settings
        self.shop = shop

    def answer(
        self,
        message: str,
        parse: Any,
        session: Any,
        catalog_match: Callable[[], float],
        timings: dict[str, float],
        always: bool = False,
    ) -> ServiceAnswer | None:
        """The answer from the policy passages when the message is close to a section or a
        passage and closer to the policies than to any product (`belongs_to_policies`;
        `catalog_match()` is the message's closeness to its nearest product, asked for only
        when needed), or `always` (the parser is sure it is a service question); else None.
        A short follow-up to a policy answer ("do they expire?") that is no product request
        ("something cheaper"), or to a request for the order number, is matched together
        with the message before it, and one that asks it again of another case ("what if i
        just swap it for a medium?", "what about electronics?") is always answered. The
        policy closeness goes into `timings`."""
        settings, shop = self.settings, self.shop
        found = match_policies(shop, message)
        sure_search = (
            parse.intent in SHOPPING_INTENTS and parse.confidence >= settings.parse_confidence
        )
        asked_number = session.last_route == "order_ask"  # "and if it never shows up?"
        follow_up = (asked_number or session.last_route == "policy") and session.last_message
        continues = bool(follow_up and _CONTINUES.match(message))
        if continues:  # "what about electronics?", "what if ...": the same rule, of another case
            sure_search = False
        if follow_up and not sure_search and (asked_number or continues or not always):
            short = len(message.split()) <= MAX_FOLLOW_UP_WORDS
            if short and (continues or catalog_match() < settings.shopping_match):
                joined = match_policies(shop, f"{session.last_message} {message}")
                if continues or joined.best > found.best:  # "and if i'd paid with paypal?"
                    found = joined  # asks the rule just answered, not about paypal at large
        timings["policy_match"] = round(found.best, 3)
        if not found.passages:
            return None
        if not (always or continues) and not belongs_to_policies(
            found, message, sure_search, catalog_match, settings
        ):
            return None
        return service_answer(found.passages)


# A sentence that states the rest of the rule the sentence before it begins: "Returns are
# free when the item is defective ... For all other returns, a $6.95 fee is deducted".
_REST_OF_RULE = re.compile(
    r"^(?:for (?:all|any) other|in (?:all|any) other cases|otherwise|all other|any other"
    r"|for everything else|everything else)\b",
    re.I,
)


def _completes(passage: Any, before: Any) -> bool:
    """Whether `passage` is the rest of the rule `before` begins: the next sentence of its
    paragraph, opening "For all other ...", "Otherwise"."""
    return (
        passage.doc.id == before.doc.id
        and passage.block == before.block
        and passage.position == before.position + 1
        and bool(_REST_OF_RULE.search(passage.text))
    )


def service_answer(passages: Sequence[Any]) -> ServiceAnswer | None:
    """The answer from ranked passages (`Shop.policy_passages`, best first), or None when
    there are none. A sentence quoted is never cut from the rest of its rule ("For all other
    returns, ..." after "Returns are free when ..."): half a rule misstates it."""
    if not passages:
        return None
    best = passages[0]
    chosen = [best]
    if best.is_item:
        siblings = [
            p for p in passages if p.doc.id == best.doc.id and p.block == best.block and p.is_item
        ]
        if sum(len(p.text) for p in siblings) <= MAX_LIST_CHARS:
            chosen = siblings
    used = sum(len(p.text) for p in chosen)
    for passage in passages[1:]:
        if len(chosen) >= MAX_PASSAGES or passage.score < best.score - CLOSE_TO_BEST:
            break
        if passage in chosen or used + len(passage.text) > MAX_ANSWER_CHARS:
            continue
        chosen.append(passage)
        used += len(passage.text)
    for passage in list(chosen):  # "Returns are free when ..." needs its "For all other ..."
        rest = next((p for p in passages if _completes(p, passage)), None)
        if rest is not None and rest not in chosen:
            chosen.append(rest)
    docs: list[Any] = []
    for passage in chosen:
        if all(passage.doc.id != doc.id for doc in docs):
            docs.append(passage.doc)
    order = {doc.id: rank for rank, doc in enumerate(docs)}
    chosen.sort(key=lambda p: (order[p.doc.id], p.position))
    return ServiceAnswer(" ".join(p.text for p in chosen), docs)
