"""The product side of a turn: whether a message is a product search at all
(`searched_anyway`), a search under the carried slots (dropping the least important filter
when nothing matches them all), or the products the shopper refers back to ("the second
one", "compare 1 and 3", "which one is cheaper?").

Each returns a `Found` value; the engine copies it into the turn. Comparisons are never
left to the LM: the reply's comparison table is computed from the records (see
`bot.dialogue.turn.comparison_table`).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.grounding import MAX_FACT_PRODUCTS, money, plain_text
from bot.dialogue.signals import (
    FILLER_WORDS,
    asks_about_shown,
    asks_for_product,
    asks_question,
    asks_which,
    asks_yes_no_of_shown,
    gives_task,
    of_all_shown,
    points_at_several,
    says_reference,
    service_words,
    shopping_words,
    shown_references,
    superlative_one,
    tells_need,
)
from bot.nlu.parser import Parse
from bot.nlu.schema import (
    CONVERSATION_INTENTS,
    HANDOFF_INTENTS,
    MAX_SLOT_CHARS,
    SHOPPING_INTENTS,
    merge_slots,
)
from bot.prompts import render
from bot.settings import Settings
from bot.shop import Shop
from bot.stores.sessions import SessionState
from retrieval.filters import ProductFilters
from retrieval.ranking import RankedProduct, RankRequest

FILTER_SLOTS = ("category", "brand", "colour", "size", "price_min", "price_max")
# The filters an empty search drops first, one at a time, until something is found.
RELAX_ORDER = ("size", "brand", "colour", "price_min", "price_max", "category")
STATED_FILTERS = ("brand", "colour", "size", "price_min", "price_max")  # said before a search
SHOWN_PRODUCTS = MAX_FACT_PRODUCTS  # the reply can speak of exactly the products shown
RECALLED = 20
KIND_VOTERS = 5  # the products closest in meaning to a need naming no kind, whose types vote
NEED_WORDS = 3  # words but filler in a need put in a sentence ("keep me dry when i bike")
FIT = 0.8  # products shown are at least this similar to the request, relative to the best
MAX_FILTER_CHARS = 40  # a filter value a reply names
SHOPPING_WORDS_EASE = 0.15  # less catalog closeness a message asking for a product needs
TOLD_NEED_EASE = 0.2  # ... and one telling of a need through the shopper's life (`tells_need`)
HEAD_SEARCH_EASE = 0.2  # ... and one the intent head reads as a search (`Parse.head_search`)
SURE_SMALL_TALK = 0.9  # a greeting, thanks or goodbye parsed this sure is never searched
_NOT_AFTER_COLOUR = r"(?!\s+(?:for|with|and|to|of|or|that|which|is|are)\b)(?=\s+[a-z]|\s*$|[.,!?])"
# ... nor the shopper's own colour: "i go red as a tomato", "im lobster red by noon"
_SHOPPERS_COLOUR = (
    r"\b(?:i'?m|i am|go|goes|going|went|turn(?:s|ed|ing)?|get(?:s|ting)?|got|lobster|beet)"
    r"\s+{colour}\b|\b{colour} as\b"
)
SORT_KEYS = {
    "cheapest": lambda p: (p.price is None, p.price or 0.0),
    "most_expensive": lambda p: (p.price is None, -(p.price or 0.0)),
    "best_rated": lambda p: (-(p.rating or 0.0), -(p.review_count or 0)),
    "most_popular": lambda p: (-(p.review_count or 0), -(p.rating or 0.0)),
}


@dataclass
class Found:
    """What the product side of a turn found: its route ("search", "details" or "clarify"
    with `fixed_reply`), the products in the order shown, the slots now in force, whether
    the reply describes one product in detail, and the numbers the shopper saw them under."""

    route: str
    products: list[RankedProduct] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    detailed: bool = False
    positions: list[int] = field(default_factory=list)
    fixed_reply: str | None = None
    relaxed: list[str] = field(default_factory=list)  # filters dropped to find anything
    features: list[str] = field(default_factory=list)  # asked for in words ("with pockets")
    ran_out: str = ""  # "anything else?" found no more of these ("running shoes")


def named_colour(message: str, colours: Iterable[str]) -> str | None:
    """The one catalog colour the message names as a colour ("in red", "a red dress",
    "red."), not as a noun of its own ("face cream for dry skin") nor as the shopper's own
    ("i go red as a tomato at the pool"); None if none or several."""
    text = message.lower()
    named = [
        colour
        for colour in colours
        if (
            re.search(rf"\bin {re.escape(colour)}\b", text)
            or re.search(rf"\b{re.escape(colour)}\b{_NOT_AFTER_COLOUR}", text)
        )
        and not re.search(_SHOPPERS_COLOUR.format(colour=re.escape(colour)), text)
    ]
    return named[0] if len(named) == 1 else None


def search_phrase(text: str) -> str:
    """A need put in words, as a search query short enough to be a slot (MAX_SLOT_CHARS) and
    so to carry over to "under 200 if possible": the text itself when short, else its words
    without filler ("my back is killing me from working at the kitchen table ... need a
    proper chair" -> "back killing working kitchen table ... need proper chair")."""
    if len(text) <= MAX_SLOT_CHARS:
        return text
    words = _content_words(text)
    phrase = ""
    for word in words:
        if len(phrase) + len(word) + 1 > MAX_SLOT_CHARS:
            break
        phrase = f"{phrase} {word}".strip()
    return phrase or text[:MAX_SLOT_CHARS]


def kind_of(item: Any) -> str | None:
    """The product type of a ranked or recalled product (its `type` attribute)."""
    return (item.product.attributes or {}).get("type")


def refs_said(parse: Parse, message: str, shown: int) -> Parse:
    """The parse with the product numbers the words say: "the top two" is 1 and 2, "is the
    first one thick?" is 1 alone. The LM sees no products, so a number of its own that the
    message does not say ("compare the top two" read as 2 and 3) is a guess and is dropped;
    a comparison left with one product is a question about it."""
    given = parse.slots.get("product_refs")
    if not given:
        return parse
    said = shown_references(message, shown)
    kept = said or [n for n in given if says_reference(message, n, shown)]
    if kept == given:
        return parse
    slots = {name: value for name, value in parse.slots.items() if name != "product_refs"}
    if kept:
        slots["product_refs"] = kept
    intent = parse.intent
    if intent == "compare_products" and len(kept) == 1:
        intent = "product_details"
    return dataclasses.replace(parse, intent=intent, slots=slots)


def _names_other(parse: Parse, session: SessionState) -> bool:
    """Whether the parse names a product by a query of its own, not the one the search
    shown was for (the LM copies the last query into "is it waterproof?")."""
    query = str(parse.slots.get("query") or "").strip().lower()
    return bool(query) and query != str(session.slots.get("query") or "").strip().lower()


def _content_words(text: str) -> list[str]:
    """The words of `text`, lower-cased, without filler ("my", "the", "this", ...)."""
    return [w for w in re.findall(r"[\w'-]+", text.lower()) if w not in FILLER_WORDS]


def _stems(words: Iterable[str]) -> set[str]:
    """The words with a plural's "s" dropped ("sheets" is "sheet")."""
    return {re.sub(r"(?<=\w\w)s$", "", w) for w in words}


def named_features(text: str, features: Iterable[str]) -> list[str]:
    """The catalog features ("pockets", "water-resistant") the words ask for: whole words,
    a hyphen or a space alike, singular or plural ("with a pocket", "water resistant")."""
    lowered = text.lower()
    return sorted(f for f in features if re.search(_feature_pattern(f), lowered))


def named_type(text: str, types: Iterable[str]) -> str | None:
    """The catalog's product type the words name ("navy backpack for school": "backpack"),
    the longest when several do ("trail running shoes" over "running shoes")."""
    lowered = text.lower()
    named = [t for t in types if re.search(_feature_pattern(t), lowered)]
    return max(named, key=lambda t: (len(t.split()), len(t)), default=None)


def has_feature(product: Any, feature: str) -> bool:
    """Whether the record lists `feature` (its `features` attribute) or its title or
    description says it."""
    listed = str((product.attributes or {}).get("features") or "").lower()
    said = f"{product.title} {product.description or ''}".lower()
    pattern = _feature_pattern(feature)
    return bool(re.search(pattern, listed) or re.search(pattern, said))


def _feature_pattern(feature: str) -> str:
    words = [re.escape(word) for word in re.split(r"[-\s]+", feature.strip().lower()) if word]
    stem = r"[-\s]?".join(words)
    stem = stem[:-1] + "s?" if stem.endswith("s") else stem + "s?"
    return rf"\b{stem}\b"


def said_filter(name: str, value: Any, texts: dict[str, str]) -> str:
    """A filter as a reply names it ("in red", "in size 9", "under $80.00"), from the
    `filter_*` phrases of `prompts/canned_replies.toml`."""
    if name in ("price_min", "price_max"):
        return render(texts[f"filter_{name}"], value=money(float(value)))
    if name == "size" and re.fullmatch(r"x*[sml]|x+l", str(value), re.I):
        value = str(value).upper()  # "in size M", as the size charts write it
    return render(texts[f"filter_{name}"], value=plain_text(value, MAX_FILTER_CHARS))


def search_notes(
    state: dict[str, Any],
    relaxed: Sequence[str],
    texts: dict[str, str],
    features: Sequence[str] = (),
    products: Sequence[Any] = (),
) -> str:
    """What a search reply says before its lead, from templates (the LM never sees it, so it
    cannot misstate it): the filters dropped to find anything ("I couldn't find any in size
    150, so I left that out."), then those the search ran under ("Showing what I found in
    blue, under $80.00."), and how many of the products shown, counted from the first, have
    the `features` asked for ("The first 2 list pockets.", "None of these lists pockets.").
    "" when there is nothing to say."""
    notes = []
    if relaxed:
        dropped = " or ".join(said_filter(name, state.get(name), texts) for name in relaxed)
        notes.append(render(texts["search_relaxed"], dropped=dropped))
    kept = [name for name in STATED_FILTERS if state.get(name) is not None]
    kept = [name for name in kept if name not in relaxed]
    if kept:
        filters = ", ".join(said_filter(name, state[name], texts) for name in kept)
        notes.append(render(texts["search_filters"], filters=filters))
    if features and products:
        has = [all(has_feature(p, f) for f in features) for p in products]
        having = next((n for n, yes in enumerate(has) if not yes), len(has))  # the first N
        if having == len(products):
            key = "search_features_all"
        elif having:
            key = "search_features_some_one" if having == 1 else "search_features_some"
        else:
            key = "search_features_not_all" if any(has) else "search_features_none"
        named = " and ".join(plain_text(f.replace("-", " "), MAX_FILTER_CHARS) for f in features)
        notes.append(render(texts[key], count=having, features=named))
    return " ".join(notes) + " " if notes else ""


def searched_anyway(parse: Parse, match: float, settings: Settings, text: str = "") -> bool:
    """Whether a message the parser calls out of scope, or is unsure of, is a product search
    after all: its words ask for a product outright ("I am looking for an office calendar":
    the store may not carry it, and the shopper should hear so with the nearest
    alternatives, not a refusal), or its nearest product is at least
    `settings.shopping_match` similar, `SHOPPING_WORDS_EASE` less when its words speak of
    shopping ("gift ideas for my dad"), `TOLD_NEED_EASE` less when they tell of a need
    through the shopper's life ("I have a kid who will start school soon": few products
    are described in such words), `HEAD_SEARCH_EASE` less when the intent head reads a
    product search in them and they are neither a command nor a question ("my home office is
    so dim i get headaches", not "turn off the living room lights" or "how much is 50 plus
    756": assistants are asked a world of questions, the shop few of its needs). Small talk
    counts only when the parser is not sure of it either: after a search it has called "a
    gift for a coffee lover" a greeting, while "thank you!" is parsed as thanks with near
    certainty and may still sit near the threshold on a small catalog."""
    unsure = parse.confidence < settings.parse_confidence
    if parse.intent in SHOPPING_INTENTS or parse.intent in HANDOFF_INTENTS:
        return False
    small_talk = parse.intent in CONVERSATION_INTENTS and parse.confidence < SURE_SMALL_TALK
    rejected = parse.intent == "out_of_scope" or small_talk or unsure
    if rejected and text and asks_for_product(text):
        return True
    head_reads_need = (
        parse.head_search >= settings.second_opinion
        and not gives_task(text)
        and not asks_question(text)
    )
    ease = HEAD_SEARCH_EASE if head_reads_need else 0.0
    if text and tells_need(text):
        ease = max(ease, TOLD_NEED_EASE)
    elif text and shopping_words(text):
        ease = max(ease, SHOPPING_WORDS_EASE)
    return rejected and match >= settings.shopping_match - ease


class ProductDesk:
    """Finds the products a turn is about; `texts` are the canned replies, `values` the
    catalog's slot values (`Shop.slot_values`: its features and product types among them)."""

    def __init__(
        self, shop: Shop, texts: dict[str, str], values: dict[str, set[str]] | None = None
    ) -> None:
        self.shop = shop
        self.texts = texts
        self.values = values or {}

    def search(
        self,
        parse: Parse,
        message: str,
        carried: dict[str, Any],
        shopper_id: str | None,
        session_id: str,
        exclude: Sequence[str] = (),
    ) -> Found:
        """Search the catalog with the parse's slots on top of those `carried` from the last
        search ("cheaper", "in blue"), ranked for the shopper; in-stock products only, none
        of those `exclude` names (the products shown, for "anything else?"). Of
        the products that fit, those of the type the words name ("navy backpack for school":
        backpacks before a navy tote) come first, and among those, the ones with every feature
        asked for ("with pockets": a word, not a filter), in the ranking's order."""
        state = merge_slots(carried, parse.slots)
        asked = f"{message} {state.get('query') or ''}"  # "with pockets" carries over
        features = named_features(asked, self.values.get("feature", ()))
        kind_named = named_type(asked, self.values.get("type", ()))
        query = " ".join(
            str(state[name]) for name in ("colour", "material", "query") if state.get(name)
        )
        query = query or str(state.get("category") or message)
        sort = state.get("sort")
        wanted = {name: state.get(name) for name in FILTER_SLOTS}
        # A need that names no kind ("something to keep me dry when i bike to work"): the
        # kind meant leads the search (else "dry" finds quick-dry sandals by keyword alone).
        # A colour or size asked for later ("in black") does not change the kind meant.
        unnamed = not (kind_named or state.get("category") or state.get("brand"))
        need = str(state.get("query") or query)
        kind_filters = ProductFilters(**{**wanted, "colour": None, "size": None}, in_stock=True)
        if unnamed and (meant := self._kind_meant(need, kind_filters)):
            kind_named, query = meant, f"{meant} {query}"
        relaxed: list[str] = []
        while True:
            ranked = self.shop.recommend(
                query,
                RECALLED,
                ProductFilters(**wanted, in_stock=True),
                request=RankRequest(**wanted),
                shopper_id=shopper_id,
                session_id=session_id,
            )
            # Nothing under every filter, or none of the kind sought ("office chair for
            # someone 6'4": chairs come in no size 6): drop the least important filter still
            # set, and say so.
            loosen = next((name for name in RELAX_ORDER if wanted.get(name) is not None), None)
            of_kind = not kind_named or any(kind_of(item) == kind_named for item in ranked)
            if (ranked and of_kind) or loosen is None:
                break
            relaxed.append(loosen)
            wanted[loosen] = None
        if exclude:
            left_out = set(exclude)
            ranked = [item for item in ranked if item.product.id not in left_out]
        if ranked:
            # Exploration may lift a product that merely shares a colour with the request, and
            # "cheapest" means the cheapest of what fits: keep what is close to the best match.
            best = max(item.features.get("semantic", 0.0) for item in ranked)
            ranked = [i for i in ranked if i.features.get("semantic", 0.0) >= FIT * best]
            if kind_named:
                ranked.sort(key=lambda i: kind_of(i) != kind_named)
        if sort in SORT_KEYS:
            # "cheaper ones" after hiking boots: the cheapest hiking boots, not a sandal that
            # shares the colour; the type most of the best matches have is what is sought.
            kinds = Counter(kind_of(item) for item in ranked[:5])
            kind = kinds.most_common(1)[0][0] if kinds else None
            same = [item for item in ranked if kind_of(item) == kind]
            if kind and len(same) >= 2:
                ranked = same
            ranked = sorted(ranked, key=lambda item: SORT_KEYS[sort](item.product))
        if features and ranked:
            # Those of the best match's kind with the features first ("waterproof hiking
            # boots": the waterproof hiking boots, not a waterproof winter boot).
            kind = kind_of(ranked[0])
            ranked.sort(
                key=lambda item: (
                    kind_of(item) != kind or not all(has_feature(item.product, f) for f in features)
                )
            )
        return Found(
            "search", ranked[:SHOWN_PRODUCTS], state, relaxed=relaxed, features=list(features)
        )

    def _kind_meant(self, query: str, filters: ProductFilters) -> str | None:
        """The type of the product closest in meaning to the query, when at least one more
        of the `KIND_VOTERS` closest is of it and no other type has more of them; None when
        they do not agree so, or when the query is no need put in a sentence: fewer than
        `NEED_WORDS` words but filler ("Ridgeline Pro", a model's name), or all of them in
        the title of a product the keywords find."""
        words = _stems(_content_words(query))
        if len(words) < NEED_WORDS:
            return None
        closest = self.shop.search(query, KIND_VOTERS, filters, "dense")
        kinds = Counter(kind_of(hit) for hit in closest)
        kind = kind_of(closest[0]) if closest else None
        if not kind or kinds[kind] < 2 or kinds[kind] < max(kinds.values()):
            return None
        for hit in self.shop.search(query, KIND_VOTERS, filters, "keyword"):
            if words <= _stems(_content_words(hit.product.title)):
                return None  # the words name this product
        return kind

    def pointed_at(
        self,
        parse: Parse,
        message: str,
        session: SessionState,
        shopper_id: str | None,
        session_id: str,
    ) -> tuple[Parse, Found] | None:
        """A question about the products shown last, read from its words when the parser
        took it for a search or found no numbers in it: "is the first one in stock?", "which
        one is cheaper?", "which of the first two is better rated?", "which is the best
        rated of these", and "how much is it?", "can I see a picture?" (the product the last
        details turn was about, else the first one shown) and "how many people does the
        second one sleep?" (no problem report), "is it waterproof?" (a catalog feature, of
        the product in focus; "are they ...?" of all shown) whatever the parser read. The parse it
        amounts to and what it found; None when it points at nothing shown."""
        named = bool(shown_references(message, len(session.shown))) and not service_words(message)
        features = named_features(message, self.values.get("feature", ()))
        asks_feature = bool(features) and asks_yes_no_of_shown(message)  # "is it waterproof?"
        about_it = asks_about_shown(message) or named or asks_feature
        if not session.shown or (parse.intent not in SHOPPING_INTENTS and not about_it):
            return None
        given = [n for n in parse.slots.get("product_refs") or [] if n <= len(session.shown)]
        if given and parse.intent != "search_products":
            return None  # the parser's own details or comparison request
        refs = given or shown_references(message, len(session.shown))
        if not refs and not asks_which(message) and (order := superlative_one(message)):
            refs = [self._first_by(order, session.shown)]  # "is the cheapest one any good?"
        if not refs and parse.intent == "search_products" and parse.slots.get("category"):
            return None  # "which tents are cheapest": a new search
        if asks_which(message):
            if not refs:
                count = len(session.shown) if of_all_shown(message) else 2
                refs = list(range(1, min(count, len(session.shown)) + 1))
            intent = "compare_products" if len(refs) > 1 else "product_details"
        elif refs:
            intent = "product_details"
        elif asks_feature:  # of the one in focus, or of all shown: "are they waterproof?"
            several = points_at_several(message)
            refs = list(range(1, len(session.shown) + 1)) if several else [session.focus or 1]
            intent = "compare_products" if len(refs) > 1 else "product_details"
        elif about_it and not _names_other(parse, session):
            refs, intent = [session.focus or 1], "product_details"
        else:
            return None
        parse = dataclasses.replace(parse, intent=intent, slots={"product_refs": refs})
        return parse, self.about_shown(parse, message, session, shopper_id, session_id)

    def _first_by(self, order: str, shown: Sequence[str]) -> int:
        """The number among those `shown` of the first product in `order` (a `SORT_KEYS`
        key): the cheapest, the best rated, ..."""
        known = self.shop.products(list(shown))
        numbered = [(number, known[pid]) for number, pid in enumerate(shown, 1) if pid in known]
        return min(numbered, key=lambda pair: SORT_KEYS[order](pair[1]))[0] if numbered else 1

    def about_shown(
        self,
        parse: Parse,
        message: str,
        session: SessionState,
        shopper_id: str | None,
        session_id: str,
    ) -> Found:
        """The products a details or compare request refers to: by number among those shown
        last ("the second one"; none named: the one the last details turn was about, else the
        first, or the first two to compare), or, for a product named in the message, the best
        match of a search."""
        refs = parse.slots.get("product_refs") or []
        if not refs:
            if _names_other(parse, session):
                found = self.search(parse, message, session.slots, shopper_id, session_id)
                return Found("search", found.products[:1], found.state, detailed=True)
            # "compare them" after one product: that one, not "which one do you mean?"
            refs = (
                [1, 2][: max(len(session.shown), 1)]
                if parse.intent == "compare_products"
                else [session.focus or 1]
            )
        if len(session.shown) == 1:
            refs = [1]  # "compare them", "the second one" after one product: that one
        state = merge_slots(session.slots, {})
        if not session.shown:
            return Found("clarify", state=state, fixed_reply=self.texts["nothing_shown"])
        if any(ref > len(session.shown) for ref in refs):
            reply = self.texts["unknown_reference"].replace("{count}", str(len(session.shown)))
            return Found("clarify", state=state, fixed_reply=reply)
        ids = [session.shown[ref - 1] for ref in refs]
        products = self.shop.products(ids)
        found = [(ref, pid) for ref, pid in zip(refs, ids, strict=True) if pid in products]
        return Found(
            "details",
            [RankedProduct(products[pid], 1.0, {}, []) for _, pid in found],
            state,
            detailed=parse.intent == "product_details",
            positions=[ref for ref, _ in found],
        )
