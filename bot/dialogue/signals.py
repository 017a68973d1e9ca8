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

# Words that name a person to talk to whatever the sentence: "agent please", "human!".
_PERSON = re.compile(
    r"\b(?:human|humans|agent|agents|representative|rep|operator|real (?:one|live|person)"
    r"|live (?:chat|support|person)|actual (?:person|human)|team member|support team"
    r"|supervisor|manager|call me|phone me)\b",
    re.I,
)
# Words that do only after a request to talk: "I am a very messy person" asks for nobody,
# "can I speak to someone", "is there a person I can chat with" do.
_PERSON_ASKED = re.compile(
    r"\b(?:talk|speak|chat|connect|transfer|put me|pass me|get me|give me|reach|contact"
    r"|is there|are there|let me|can i have|prefer)\b[\w\s',]{0,30}?"
    r"\b(?:person|people|someone|somebody|staff|customer (?:service|support|care))\b",
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
# "my package hasn't moved in a week, and if it never shows up?", "you cancelled my order.
# why", "will i still be charged for it": about an order of theirs, but what they ask is the rule
_RULE_OF_OWN_ORDER = re.compile(
    r"\b(?:why|what happens|what now|what if|and if|what (?:do|should|can) i do|how do i"
    r"|(?:where|how) (?:can|do) i (?:see|check|find)"
    r"|will i (?:still )?(?:be|get)|do i (?:have|need) to|can i still|is it too late|too late"
    r"|past the deadline|(?:is|are) (?:that|it|this|they) covered"
    # "can i cancel just one thing from my order?": whether the store allows it comes first
    r"|(?:can|could) i (?:just |still |even |please )?(?:cancel|change|fix|add|update|edit"
    r"|remove|swap|switch|correct)|is it possible to|am i able to|is there (?:a|any) way to"
    # "the tracking hasnt moved in a week": what the store does about a late package
    r"|has ?n[o'’]?t moved|(?:supposed|meant|due) to (?:come|arrive|get here|be here)"
    r"|never (?:came|arrived|showed up|shows up|turned up)"
    r"|forgot to (?:add|include|put|use|apply))\b",  # "forgot to add socks to my order"
    re.I,
)
_ASKED_TO_ACT = re.compile(
    r"\b(?:can|could|would|will) you (?:please |pls )?(?:track|cancel|check|look|find|change"
    r"|update|refund|send|resend|fix)\b",
    re.I,
)
# "im scared my order is going to get cancelled": a worry asks what the rule is
_WORRY = re.compile(r"\b(?:scared|worried|afraid|nervous|concerned|anxious)\b", re.I)
# Words a long need loses as a search query, and a reply may take from the shopper's
# message without a record saying them ("my", "the", "this", ...).
_FILLER = (
    "a an the i i'm im me my mine we our you your it its is are was be been am to of in on at"
    " for from with and or but so that this these those just really very like some any"
)
FILLER_WORDS = frozenset(_FILLER.split())
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_REFERENCE = re.compile(
    r"\b(?:the\s+)?(first|second|third|fourth|fifth)\s+(?:one|ones|option|product|item)s?\b"
    r"|\b(?:number|no\.?|#)\s*([1-5])\b",
    re.I,
)
_COUNT_WORDS = {"two": 2, "2": 2, "three": 3, "3": 3, "four": 4, "4": 4}
_LEADING = re.compile(r"\b(first|top|last)\s+(two|three|four|[234])\b", re.I)
_LAST_ONE = re.compile(r"\bthe\s+last\s+(?:one|option|product|item)\b", re.I)
_WHICH = re.compile(
    r"\bwhich\s+(?:one|ones|of\s+(?:these|them|those|the\s+\w+(?:\s+two|\s+three)?)"
    r"|is|are|has|have|would|will|can)\b"
    r"|\b(?:do|does|are|is)\s+any\s+of\s+(?:these|them|those)\b"
    r"|\bcompare\b|\bthe difference between\b",
    re.I,
)
# Every product shown, not the first two: "the best rated of these", "which ones are
# waterproof?", "which are in stock?", and a superlative: "which is the cheapest", "which
# one has the most reviews".
_OF_ALL = re.compile(
    r"\b(?:of|among)\s+(?:these|them|those|all)\b|\bwhich\s+(?:ones|are|have)\b"
    r"|\b(?:cheapest|priciest|dearest|most expensive|least expensive|lowest[- ]priced?"
    r"|(?:best|highest|top|worst|lowest)[- ]rated|most (?:reviews|reviewed|popular))\b",
    re.I,
)
_SERVICE = re.compile(
    r"\b(?:broken|broke|breaks|damaged|defective|faulty|cracked|leaking|snapped|ripped|torn"
    r"|dented|crushed|shattered|scratched|(?:fell|came) apart|wrong (?:size|item|colou?r|one)"
    r"|(?:is|are|was|were) missing|missing (?:items?|parts?|package|parcel|from)"
    r"|never (?:arrived|came)|hasn'?t (?:arrived|come)|didn'?t (?:arrive|come)"
    r"|(?:is|was|arrived|running|so) late|late (?:order|package|parcel|delivery)"
    r"|(?:package|parcel|order|delivery) (?:is |was |got )?lost|lost (?:my )?(?:package|parcel)"
    r"|stopped working|doesn'?t work|not working|charged twice|declined"
    r"|won'?t turn on|doesn'?t turn on|(?:is|are) (?:that|it|this|they) covered|under warranty"
    r"|send (?:it|them|this|that|these|those) back|(?:get|want) (?:my|the|a|actual|real)?\s*money"
    r" back|gift receipt|without (?:a |the )?receipt|store credit|(?:get|refund) the difference"
    r"|price (?:drop|dropped|went down)|price (?:match|adjustment))\b"
    r"|^\s*(?:will|would|do|does|can|could) you (?!have|sell|carry|stock|recommend|suggest|show"
    r"|find|get|help me find|look)",
    re.I,
)
# How to reach the store: "whats the number to call you guys", "how can i reach you". Not
# "what should i call you", which asks the bot's name, nor someone else's number ("dial
# lisa's cell phone number", "the phone number of the car rental place").
_CONTACT = re.compile(
    r"\b(?:(?<!'s )(?<!cell )(?:phone number|e-?mail address)(?! (?:of|for)\b)"
    r"|your (?:phone|number|e-?mail)|number (?:to|i can) (?:call|text|ring)"
    r"|contact (?:you|the store|customer (?:service|support))"
    r"|(?<!what should i )(?<!what do i )(?<!what can i )call you|reach you"
    r"|can i call (?:you|someone|somebody|anyone|the store|customer|support)"
    r"|(?:when|what time) (?:can|do|should) i call|opening hours|your hours)\b",
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
    "Hello! Is anyone here?", "how are you doing?" and "I am a very messy person" do not."""
    return bool(_PERSON.search(text) or _PERSON_ASKED.search(text))


def wants_bot_back(text: str) -> bool:
    """Whether a shopper handed to a person asks the bot to go on ("no, keep helping me")."""
    return bool(_BOT_BACK.search(text)) and not asks_for_person(text)


def acts_on_order(text: str) -> bool:
    """Whether the shopper wants something done to, or looked up in, an order of theirs:
    an order number, "my order"/"my refund"/"I ordered", or a request ("cancel it",
    "I want to track ..."), and not a question about a rule ("what does processing mean for
    my order status?", "who pays for return shipping", "until when can I cancel an order",
    "I'm worried my order will get cancelled")."""
    if find_order_number(text):
        return True
    if _RULE_QUESTION.search(text) or (_WORRY.search(text) and not _ACTION_REQUEST.search(text)):
        return False
    return bool(_OWN_ORDER.search(text) or _ACTION_REQUEST.search(text))


def asks_rule_of_own_order(text: str) -> bool:
    """Whether a message about an order of theirs asks what the rule is rather than for
    something to be done ("it showed up dec 2, can i still return it on jan 20?", "one item
    was cancelled because it sold out, will i still be charged for it?", "you cancelled my
    order. why"): no order number, no request ("cancel it", "I want to track ..."). "Where
    is my order?" and "what's the status of my refund" are no such question."""
    if find_order_number(text) or _ACTION_REQUEST.search(text) or _ASKED_TO_ACT.search(text):
        return False
    return bool(_RULE_OF_OWN_ORDER.search(text) or _WORRY.search(text))


def shown_references(text: str, shown: int) -> list[int]:
    """The numbers of the shown products the message points at ("the second one", "#3"),
    in order; [] when it points at none of the `shown` products."""
    refs = []
    for match in _REFERENCE.finditer(text):
        number = _ORDINAL_WORDS[match.group(1).lower()] if match.group(1) else int(match.group(2))
        if number <= shown and number not in refs:
            refs.append(number)
    if (lead := _LEADING.search(text)) and shown:  # "the top two", "first 3", "the last two"
        count = min(_COUNT_WORDS[lead.group(2).lower()], shown)
        first = shown - count + 1 if lead.group(1).lower() == "last" else 1
        refs = list(range(first, first + count))
    elif _LAST_ONE.search(text) and shown:
        refs = [shown]
    return refs


_SUPERLATIVE_ONE = re.compile(
    r"\bthe\s+(cheapest|least expensive|priciest|most expensive|(?:best|highest|top)[- ]rated"
    r"|most popular)\s+(?:one|option|product|item)\b",
    re.I,
)
_SUPERLATIVE_SORTS = {
    "cheapest": "cheapest",
    "least expensive": "cheapest",
    "priciest": "most_expensive",
    "most expensive": "most_expensive",
    "most popular": "most_popular",
}  # fmt: skip; any other (best, highest, top rated) is "best_rated"


def superlative_one(text: str) -> str | None:
    """The order (a `sort` slot value) that picks out the product the message points at by a
    superlative: "is the cheapest one any good?" -> "cheapest"; None if it names none."""
    found = _SUPERLATIVE_ONE.search(text)
    if not found:
        return None
    words = re.sub(r"\s+", " ", found.group(1).lower())
    return _SUPERLATIVE_SORTS.get(words, "best_rated")


def says_reference(text: str, number: int, shown: int) -> bool:
    """Whether the message says the `number`th of the `shown` products: "1 and 3", "the
    2nd", "the first", "the last"."""
    said = [rf"{number}(?:st|nd|rd|th)?"]
    said += [word for word, n in _ORDINAL_WORDS.items() if n == number]
    said += ["last"] if number == shown else []
    return bool(re.search(rf"(?<![\w.$])(?:{'|'.join(said)})(?![\w.%])", text, re.I))


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


_ASKS_FOR_PRODUCT = re.compile(
    r"\b(?:looking for|shopping for|looking to (?:buy|get)|searching for"
    r"|(?:want|need|would like|wanna) to (?:buy|order)|i'?d like to (?:buy|order)"
    r"|do you (?:sell|carry|stock)|where can i buy)\s+(?:a|an|some|any|the)?\s*\w",
    re.I,
)
# What no shop's catalog holds, however it is asked for: "looking for a flight to Boston".
_NOT_A_PRODUCT = re.compile(
    r"\b(?:flights?|tickets?|hotels?|reservations?|directions|rides?|jobs?|recipes?"
    r"|restaurants?|apartments?|loans?)\b",
    re.I,
)


def asks_for_product(text: str) -> bool:
    """Whether the words ask for a product outright ("I am looking for an office calendar",
    "hi! im looking to buy a calendar", "do you sell bikes?"): a search, even for something
    the store does not carry, which the reply then says, with the closest it has. Travel,
    directions, recipes and the like are no product, however they are asked for."""
    return bool(_ASKS_FOR_PRODUCT.search(text)) and not _NOT_A_PRODUCT.search(text)


def shopping_words(text: str) -> bool:
    """Whether the words ask for a product ("I am looking for ...", "gift ideas for my
    dad", "something to count my steps", "do you sell bikes?")."""
    return bool(_SHOPPING.search(text))


_PEOPLE = (
    r"(?:kids?|sons?|daughters?|child|children|wife|husband|partner|mom|mum|dad|mother"
    r"|father|baby|boyfriend|girlfriend|brother|sister|grand(?:son|daughter|kids?)|family"
    r"|niece|nephew|toddler|teenager|teen)"
)
_TELLS_NEED = re.compile(
    r"\b(?:(?:my|our) (?:\w+ )?" + _PEOPLE + r"\b(?!'s)"
    r"|i have (?:a|an|two|three|\d) (?:\w+ )?" + _PEOPLE + r"\b"
    r"|(?:my|our) (?:back|feet|foot|knees?|skin|ears?|neck|hands|legs|shoulders?) (?:\w+ )?"
    r"(?:hurts?|aches?|gets?|is|are|feels?)"
    r"|i'?ll (?:run|be running|hike|be hiking|go (?:camping|hiking|running|skiing)|start)"
    r"|(?:we'?re|i'?m|we are|i am) (?:going (?:camping|hiking|running|skiing)|starting|training"
    r"|getting into|taking up)\b)",
    re.I,
)
# A question: a world of them ("how much is 50 plus 756", "what's the best crypto to buy")
# is put to assistants, few needs told to a shop are ("... what would help?").
_QUESTION = re.compile(
    r"\?|^(?:what|how|where|when|who|which|why|is|are|can|could|will|would|do|does|did"
    r"|should)\b",
    re.I,
)
# A request put to an assistant ("share my location with my mom"), not a need told.
_REQUEST = re.compile(
    r"^(?:please|set|book|tell|find|get|give|read|make|share|text|call|send|remind|review"
    r"|notify)\b",
    re.I,
)


# A task for an assistant, put as a command: "turn off the living room lights", "play some
# jazz", "roll a 10 sided die", "can you set an alarm for 6".
_TASK = re.compile(
    r"^(?:(?:hey|ok|okay|so)\b[\s,]*)?(?:please\s+|(?:can|could|would|will) you\s+)?"
    r"(?:play|turn|set|roll|book|find|show|shuffle|dim|snooze|shut|tell|remind|call|text|send"
    r"|start|stop|lock|unlock|wake me|open the|close the|bump|skip|pause|resume|read|give|add"
    r"|reserve|schedule|cancel|check|look up|navigate|transfer|pay|translate|convert"
    r"|calculate|fill|put|switch|raise|lower|mute|record|let me know)\b",
    re.I,
)


def asks_question(text: str) -> bool:
    """Whether the message is put as a question ("how much is 50 plus 756", "any tips?")."""
    return bool(_QUESTION.search(text.strip()))


def gives_task(text: str) -> bool:
    """Whether the message is a command to an assistant ("turn off the living room lights",
    "play some jazz", "roll a die") rather than a need told ("open plan office is so loud i
    cant think")."""
    return bool(_TASK.search(text.strip()))


def tells_need(text: str) -> bool:
    """Whether the shopper tells of a need through their life rather than a product ("my
    back hurts from working at the kitchen table all day", "I have a kid who will start
    school soon", "I'll run a marathon in two weeks"): a statement about their people, body
    or plans, not a question or a task for an assistant."""
    if asks_question(text) or _REQUEST.search(text.strip()):
        return False
    return bool(_TELLS_NEED.search(text))


def service_words(text: str) -> bool:
    """Whether the message reports a problem with an order, asks what the store does, or
    asks how to reach it ("the blender arrived broken", "will you set up a standing desk?",
    "what's your phone number"), or asks to send a thing back ("my aunt sent me a blender, can
    i send it back without her finding out?"): a service question even when it names a
    product."""
    return bool(_SERVICE.search(text)) or asks_to_contact(text)


def asks_to_contact(text: str) -> bool:
    """Whether the message asks how to reach the store: its phone number, email, opening
    hours ("whats the number to call you guys"). The policies answer it, wherever the words
    are closest."""
    return bool(_CONTACT.search(text))


def _word_count(text: str) -> int:
    return len(re.findall(r"[^\W_]+", text))


def substantive(text: str) -> bool:
    """Whether failing to serve this message should count towards a handoff: at least
    three words. "ok", "?", "the quantity" or an emoji never hand a conversation over."""
    return _word_count(text) >= MIN_SUBSTANTIVE_WORDS


# A reaction to what the bot said, and nothing more: "ok", "hmm okok", "Oh cool", "are you
# sure?", "ok, I'm waiting". Answered with what the shopper can do next, never "not
# understood", and never a failure.
_REPEATS = re.compile(r"(.)\1+")  # "okok", "yeahh", "sooo" fold to "ok", "yeah", "so"
_REACTION_WORDS = frozenset(
    _REPEATS.sub(r"\1", word)
    for word in str.split(
        "ok okay okey okok k kk yes yeah yea yep yup ya sure no nope nah not cool nice great good"
        " perfect awesome wow interesting fine alright right really true exactly indeed see got it"
        " that thats this is its seems looks sounds very so pretty quite better lovely amazing"
        " excellent bingo lol haha oops damn sorry well then oh ah uh um hm i im am are you sure"
        " waiting wait here there still always for me too and also just one"
    )
)
_HUMS = re.compile(r"^(?:h+m+|u+m+|u+h+|a+h+|o+h+|h+a+|m+)$")
_PRESENCE = re.compile(
    r"\b(?:are you (?:still )?(?:there|here)|anyone (?:there|here)|(?:i'?m|i am) (?:still )?"
    r"(?:waiting|here)|waiting for you|take (?:your|you) time|(?:you have|i'?m giving you)"
    r" (?:just )?(?:a|your) minute)\b",
    re.I,
)
MAX_REACTION_WORDS = 6
MAX_PRESENCE_WORDS = 8


def reacts_only(text: str) -> bool:
    """Whether the message only reacts or checks the bot is there ("ok", "hmm", "Oh cool",
    "yes waiting for you", "take your time"), asking for nothing."""
    words = [_REPEATS.sub(r"\1", w) for w in re.findall(r"[a-z]+", text.lower().replace("'", ""))]
    if not words or len(words) > MAX_PRESENCE_WORDS:
        return False
    if _PRESENCE.search(text):
        return True
    return len(words) <= MAX_REACTION_WORDS and all(
        w in _REACTION_WORDS or _HUMS.match(w) for w in words
    )


# Social phrases, by the reply they get: "Have a nice day", "Hei hei", "I hope you're doing
# well!", "I appreciate everything and hope you enjoy the rest of your day!". The parser,
# trained on "hi" and "thank you", reads such longer courtesies as out of scope or unclear.
_POLITE = {
    "goodbye": r"bye+|good ?bye|see (?:you|ya)(?: later| soon| around)?|take care"
    r"|talk (?:to you )?(?:later|soon)|good ?night|have a (?:nice|good|great|lovely|wonderful"
    r"|fine|happy) (?:day|evening|night|weekend|week|one|time)"
    r"|(?:i )?hope you (?:have|enjoy) (?:a |the )?(?:nice |good |great )?(?:rest of )?(?:your )?"
    r"(?:day|evening|weekend)|enjoy (?:the rest of )?your (?:day|evening|weekend)",
    "thanks": r"thanks?|thank (?:you|u)|thx|ty|tysm|cheers|much appreciated|grateful"
    r"|(?:i )?(?:really |truly )?appreciate (?:it|that|this|everything|all|your help|the help"
    r"|you)",
    "greeting": r"h+i+|hello+|hey+|hei|hiya|howdy|greetings|good (?:morning|afternoon|evening)"
    r"|(?:i )?hope (?:you(?:'| a)?re|youre|you are|all is|everything is|things are) (?:doing )?"
    r"(?:well|good|fine|great|ok(?:ay)?)(?: today)?|how (?:are|r) (?:you|u)(?: doing)?(?: today)?"
    r"|how'?s it going|(?:it'?s )?nice to (?:meet|talk to|chat with|see) you",
}
_POLITE_PHRASES = {
    key: re.compile(rf"(?<![\w'])(?:{pattern})(?![\w'])", re.I) for key, pattern in _POLITE.items()
}
_POLITE_FILLER = frozenset(
    str.split(
        "a lot much so very again guys all everyone folks friend the your for help info"
        " information everything you to bot assistant there too and dear"
    )
)


def pleasantry(text: str) -> str | None:
    """The courtesy a message is made of and nothing more, as the reply it gets: "goodbye"
    ("Have a nice day", "thanks, bye"), "thanks" ("I appreciate it!") or "greeting" ("Hei
    hei", "I hope you're doing well!"); None for a message that asks anything else ("hi, i
    need a tent", "thanks. also need a throw blanket")."""
    found, rest = [], text
    for key, phrase in _POLITE_PHRASES.items():
        rest, count = phrase.subn(" ", rest)
        if count:
            found.append(key)
    words = [_REPEATS.sub(r"\1", w) for w in re.findall(r"[a-z']+", rest.lower())]
    if not found or not all(w in _REACTION_WORDS or w in _POLITE_FILLER for w in words):
        return None
    return found[0]  # a goodbye before thanks, thanks before a greeting


_MORE = re.compile(
    r"\b(?:anything|something|any(?:thing)?) (?:else|different)|\b(?:other|different|more)"
    r" (?:options?|ones?|models?|designs?|styles?|choices?|products?|brands?|colou?rs?)\b"
    r"|\bany others?\b|\bshow me (?:more|others)\b"
    r"|\b(?:don'?t|do not|didn'?t) (?:really )?like (?:it|them|this|that|these|those|any)"
    r"|\b(?:look|looks|looking) (?:ugly|bad|awful|boring)\b"
    r"|\bnot (?:my (?:style|taste|thing|type)|for me)\b",
    re.I,
)
_TOO_EXPENSIVE = re.compile(
    r"\btoo (?:expensive|pricey|much|costly|high)\b|\b(?:that'?s|thats|so|very|it'?s|its)"
    r" (?:\w+ )?(?:expensive|expnsive|pricey)\b|\bcheaper\b|\bless expensive\b",
    re.I,
)


def wants_more(text: str) -> bool:
    """Whether the shopper asks for other products than those shown ("do you have anything
    else?", "they look ugly", "other models?")."""
    return bool(_MORE.search(text))


def too_expensive(text: str) -> bool:
    """Whether the shopper finds what was shown too dear ("TOO EXPENSIVE!", "thats
    expensive!!", "something cheaper")."""
    return bool(_TOO_EXPENSIVE.search(text))


_DISCOUNT = re.compile(
    r"\b(?:discounts?|promo(?:tion)?s?|promo ?codes?|coupons?|vouchers?|black friday"
    r"|\d+ ?% off|\d+ ?percent off|bulk (?:price|discount|order)|in bulk|sale price)\b",
    re.I,
)


def asks_for_discount(text: str) -> bool:
    """Whether the message asks about discounts, promo codes, sales or bulk prices ("any
    possible discount?", "its black friday", "can I have 50% off"): a question the store's
    policies answer, never one the bot may promise anything on."""
    return bool(_DISCOUNT.search(text))


_BUY_SHOWN = re.compile(
    r"\b(?:i'?ll|i will|i'?d like to|i would like to|i want to|i wanna|let me|i think i'?ll"
    r"|i'?m going to|im going to|i'?m gonna|i decide to|i'?ve decided to)\s+(?:just\s+)?"
    r"(?:buy|take|order|get|purchase|go (?:with|for))\s+(?:it|this|that|them|these|those|both"
    r"|the (?:first|second|third|fourth|fifth|\w+ one|one|\w+$|\w+ \w+$))\b"
    r"|\b(?:order|buy) (?:it|this|them) for me\b|\b(?:i'?m|im|i am) (?:buying|taking)"
    r" (?:it|this)\b|^\W*(?:i'?m|im|i am) (?:buying|taking it)\W*$"
    r"|^\W*(?:i'?ll|i will) (?:buy|take) (?:it|them)\W*$",
    re.I,
)


def wants_to_buy_shown(text: str) -> bool:
    """Whether the shopper decides to buy what was shown ("I'll buy it", "I think I would
    like to buy it then", "order this for me"): the chat cannot place orders, so the answer
    is how to."""
    return bool(_BUY_SHOWN.search(text))


_ABOUT_IT = re.compile(
    r"\b(?:how (?:much|muhc|mush)|price|pricing|cost|costs|photos?|pictures?|pics?|images?"
    r"|made (?:of|from|f)|material|details|specs|info|information|rating|reviews?|in stock"
    r"|available|weigh|weight|warranty|brand)\b",
    re.I,
)
_IT = re.compile(r"\b(?:it|its|it'?s|this|that|this one|that one|them|these|those|they)\b", re.I)
_NOT_ABOUT_IT = re.compile(
    r"\b(?:ship|shipping|delivery|deliver|return|returns|refund|tax|taxes|order|account"
    r"|password|card|payment|gift card)\b",
    re.I,
)
MAX_POINTING_WORDS = 6


# Narrower than `_IT`: "that", "this" and "they" start sentences about anything ("they love
# dinosaurs"); these words point at products.
_SHOWN_ONES = re.compile(r"\b(?:it|this one|that one|them|these|those|ones)\b", re.I)


_YES_NO = re.compile(
    r"^\s*(?:(?:and|so|ok|okay|but)\b[\s,]*)?(?:is|are|does|do|has|have|can|will|would)\s+"
    r"(?:it|its|they|this|that|these|those|them)\b",
    re.I,
)


def asks_yes_no_of_shown(text: str) -> bool:
    """Whether the message asks a yes-or-no question of what was shown: "is it waterproof?",
    "do they have pockets", "does this one come with a case" (not "black ones with pockets",
    a search)."""
    return bool(_YES_NO.search(text))


def points_at_several(text: str) -> bool:
    """Whether the message points at several products ("are they waterproof?"), not one."""
    return bool(re.search(r"\b(?:they|them|these|those|ones|any of)\b", text, re.I))


def points_at_shown(text: str) -> bool:
    """Whether a short message points at products as if some were shown ("white ones if u
    have them", "do those come in black?", "is it waterproof?")."""
    return bool(_SHOWN_ONES.search(text)) and _word_count(text) <= MAX_POINTING_WORDS


def asks_about_shown(text: str) -> bool:
    """Whether the message asks about the product just shown without naming it: "how much
    is it?", "what's the price?", "can I see a picture?", "what is it made of?", "pricing?"."""
    if not _ABOUT_IT.search(text) or _NOT_ABOUT_IT.search(text):
        return False
    return bool(_IT.search(text)) or _word_count(text) <= MAX_POINTING_WORDS
