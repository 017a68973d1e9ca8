"""What a message's own words say, beside the parser's reading: whether it asks for a
person, takes a person's help back, wants something done to an order of the shopper's (or
asks about a rule), refers back to the products shown, or is substantive enough that
failing it counts. The router uses them to overrule the parser where its training data
misleads it ("how are you doing?" read as a request for an agent, "who pays for return
shipping" read as a refund of the shopper's own order).
"""

from __future__ import annotations

import re

from bot.stores.orders import find_order_number

_PERSON = re.compile(
    r"\b(?:human|humans|person|people|agent|agents|representative|rep|operator|someone|somebody"
    r"|staff|team member|real (?:one|live)|live (?:chat|support)|customer (?:service|support|care)"
    r"|support team|manager|supervisor|call me|phone me)\b",
    re.I,
)
_BOT_BACK = re.compile(
    r"\b(?:keep helping|keep going|carry on|go on|continue|never ?mind"
    r"|no need for (?:a |an )?(?:person|human|agent)"
    r"|don'?t (?:need|want) (?:a |an |to )?(?:person|human|agent|talk|speak)"
    r"|stay with (?:you|the bot)"
    r"|back to the (?:bot|assistant)|(?:i'?ll|let me) (?:just )?(?:ask|talk to) you|you can help"
    r"|help me (?:instead|yourself))\b",
    re.I,
)
_OWN_ORDER = re.compile(
    r"\b(?:my|our)\s+(?:\w+\s+){0,2}?(?:order|orders|refund|package|parcel|delivery|purchase"
    r"|shipment|invoice|item|items|stuff)\b"
    r"|\bi (?:ordered|bought|purchased|placed|returned|sent back)\b",
    re.I,
)
_ACTION_REQUEST = re.compile(
    r"^\s*(?:please\s+|pls\s+)?(?:cancel|track|refund|change|update|modify|return|send|resend"
    r"|email|show|give|get)\b"
    r"|\b(?:i want|i'd like|i would like|i need|i wanna|help me|please)\s+(?:to\s+)?"
    r"(?:cancel|track|change|update|modify|get my|have my|a refund|my)\b",
    re.I,
)
_RULE_QUESTION = re.compile(
    r"^\s*(?:so\s+|and\s+|but\s+|hi,?\s+|hello,?\s+)?(?:what does|what do|what happens|what if"
    r"|why|how long|how much|how many|is there|are there|do you|does|who|until when)\b",
    re.I,
)
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_REFERENCE = re.compile(
    r"\b(?:the\s+)?(first|second|third|fourth|fifth)\s+(?:one|ones|option|product|item)s?\b"
    r"|\b(?:number|no\.?|#)\s*([1-5])\b",
    re.I,
)
_WHICH = re.compile(
    r"\bwhich\s+(?:one|ones|of\s+(?:these|them|those|the\s+\w+(?:\s+two|\s+three)?)|is)\b"
    r"|\bcompare\b|\bthe difference between\b",
    re.I,
)
_OF_ALL = re.compile(r"\b(?:of|among)\s+(?:these|them|those|all)\b", re.I)
_SERVICE = re.compile(
    r"\b(?:broken|broke|breaks|damaged|defective|faulty|cracked|leaking|snapped|ripped|torn"
    r"|dented|crushed|shattered|scratched|(?:fell|came) apart|wrong (?:size|item|colou?r|one)"
    r"|(?:is|are|was|were) missing|missing (?:items?|parts?|package|parcel|from)"
    r"|never (?:arrived|came)|hasn'?t (?:arrived|come)|didn'?t (?:arrive|come)"
    r"|(?:is|was|arrived|running|so) late|late (?:order|package|parcel|delivery)"
    r"|(?:package|parcel|order|delivery) (?:is |was |got )?lost|lost (?:my )?(?:package|parcel)"
    r"|stopped working|doesn'?t work|not working|charged twice|declined)\b"
    r"|^\s*(?:will|would|do|does|can|could) you (?!have|sell|carry|stock|recommend|suggest|show"
    r"|find|get|help me find|look)"
    r"|\b(?:phone number|your number|e-?mail address|contact (?:you|the store)|call you|reach you"
    r"|can i call|(?:when|what time) (?:can|do|should) i call"
    r"|opening hours|your hours)\b",
    re.I,
)
MIN_SUBSTANTIVE_WORDS = 3


_ABOUT_BOT = re.compile(
    r"\bwhat (?:(?:kind|sort)s? of (?:things?|stuff) )?(?:can|do|could) you (?:do|help(?: me)?"
    r"(?: with)?)\s*(?:for me|here)?\s*[?.!]*$|\bwhat are you(?: for)?\s*[?.!]*$"
    r"|\bhow can you help(?: me)?\s*[?.!]*$",
    re.I,
)


def asks_what_bot_does(text: str) -> bool:
    """Whether the shopper asks what the assistant can do ("what kind of stuff can you help
    me with", "what can you do?"): small talk, answered with what it helps with."""
    return bool(_ABOUT_BOT.search(text))


def asks_for_person(text: str) -> bool:
    """Whether the words ask for a person ("can I talk to a real person", "agent please").
    "Hello! Is anyone here?" and "how are you doing?" do not."""
    return bool(_PERSON.search(text))


def wants_bot_back(text: str) -> bool:
    """Whether a shopper handed to a person asks the bot to go on ("no, keep helping me")."""
    return bool(_BOT_BACK.search(text)) and not asks_for_person(text)


def acts_on_order(text: str) -> bool:
    """Whether the shopper wants something done to, or looked up in, an order of theirs:
    an order number, "my order"/"my refund"/"I ordered", or a request ("cancel it",
    "I want to track ..."), and not a question about a rule ("what does processing mean for
    my order status?", "who pays for return shipping", "until when can I cancel an order")."""
    if find_order_number(text):
        return True
    if _RULE_QUESTION.search(text):
        return False
    return bool(_OWN_ORDER.search(text) or _ACTION_REQUEST.search(text))


def shown_references(text: str, shown: int) -> list[int]:
    """The numbers of the shown products the message points at ("the second one", "#3"),
    in order; [] when it points at none of the `shown` products."""
    refs = []
    for match in _REFERENCE.finditer(text):
        number = _ORDINAL_WORDS[match.group(1).lower()] if match.group(1) else int(match.group(2))
        if number <= shown and number not in refs:
            refs.append(number)
    if re.search(r"\bfirst (?:two|2)\b", text, re.I):
        refs = [n for n in (1, 2) if n <= shown]
    return refs


def asks_which(text: str) -> bool:
    """Whether the message asks to compare, or which of the products is cheaper, better..."""
    return bool(_WHICH.search(text))


def of_all_shown(text: str) -> bool:
    """Whether a comparison is over every product shown ("the best rated of these")."""
    return bool(_OF_ALL.search(text))


_SHOPPING = re.compile(
    r"\b(?:looking for|look for|shopping for|gift|gifts|present for|buy|purchase"
    r"|do you (?:have|sell|carry|stock)|something (?:to|for|that))\b",
    re.I,
)


def shopping_words(text: str) -> bool:
    """Whether the words ask for a product ("I am looking for ...", "gift ideas for my
    dad", "something to count my steps", "do you sell bikes?")."""
    return bool(_SHOPPING.search(text))


def service_words(text: str) -> bool:
    """Whether the message reports a problem with an order, asks what the store does, or
    asks how to reach it ("the blender arrived broken", "will you set up a standing desk?",
    "what's your phone number"): a service question even when it names a product."""
    return bool(_SERVICE.search(text))


def substantive(text: str) -> bool:
    """Whether failing to serve this message should count towards a handoff: at least
    three words. "ok", "?", "the quantity" or an emoji never hand a conversation over."""
    return len(re.findall(r"[^\W_]+", text)) >= MIN_SUBSTANTIVE_WORDS
