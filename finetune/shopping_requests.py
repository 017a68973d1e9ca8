"""Labelled shopper chat turns drawn from a catalog: SFT data and the slot-extraction eval set.

Each row is one shopper message with its parse: the intent, the slots the message itself
states, the conversation state before it (None for a first turn) and the merged state after:

    {"text": "any stridewell running shoes under $90?", "intent": "search_products",
     "slots": {"query": "running shoes", "brand": "stridewell", "price_max": 90.0},
     "previous": None, "state": {...same as slots...}}
    {"text": "in red?", "intent": "search_products", "slots": {"colour": "red"},
     "previous": {"intent": "search_products", "slots": {"query": "running shoes", ...}},
     "state": {"query": "running shoes", ..., "colour": "red"}}

Slot values are the catalog's own values, lower-cased; `query` is the product phrase as the
shopper wrote it before any typo. Brands, sizes and numbers never get typos. Every phrasing
family is split by position: every fourth template (the 2nd, 6th, ...) is eval-only, so
split="eval" reads in wordings that split="train" never uses, over the same catalog values.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from bot.nlu.schema import clean_slots, merge_slots
from retrieval.catalog import Product
from retrieval.demo.product_types import product_type
from retrieval.demo.shopper_words import (
    COLOUR_WORDS,
    MAX_PRICE_WORDS,
    NICE_PRICES,
    PRICE_RANGE_WORDS,
    WRAPPERS,
    misspell,
)

SPLITS = ("train", "eval")
ROW_SHARES = (
    ("search", 0.55),
    ("follow_up", 0.25),
    ("details", 0.06),
    ("compare", 0.04),
    ("greeting", 0.04),
    ("goodbye", 0.03),
    ("thanks", 0.03),
)
TYPO_RATE = 0.15
EXTRA_SLOT_WEIGHTS = (20, 35, 25, 13, 7)  # how many constraints a first search names: 0..4
ORDINALS = ("first", "second", "third", "fourth", "fifth")

SEARCH_WRAPPERS = (
    WRAPPERS
    + ("{q}", "do you have {q}?", "can you show me {q}", "i'm looking for {q}", "hi, i need {q}")
    + ("where can i find {q}", "{q}?", "find me {q} please", "searching for {q}")
    + ("could you recommend {q}", "help me find {q}", "hey, got {q}?")
)
CATEGORY_CORES = (
    "{c}",
    "{c} stuff",
    "something in {c}",
    "{c} products",
    "anything from {c}",
    "items in {c}",
) + ("stuff from the {c} section", "whatever you have in {c}")
MODIFIER_WORDS = {
    "colour": ("in {v}", "in {v} color", "in the colour {v}", "that come in {v}"),
    "brand": ("from {v}", "by {v}", "made by {v}", "from the brand {v}"),
    "material": ("made of {v}", "in {v}", "made from {v}", "in {v} material"),
    "size": ("size {v}", "in size {v}", "sz {v}", "in a size {v}"),
    "category": ("in your {v} section", "from the {v} department", "in the {v} category"),
}
MIN_PRICE_WORDS = ("over ${v}", "at least {v}", "more than ${v}", "above {v} dollars", "${v}+")
SORT_WRAPPERS = {
    "cheapest": ("what are your cheapest {q}", "cheapest {q}", "show me the cheapest {q}"),
    "most_expensive": ("most expensive {q}", "your priciest {q}", "the most expensive {q}"),
    "best_rated": ("best rated {q}", "top rated {q}", "show me the best rated {q}"),
    "most_popular": ("most popular {q}", "whats your most popular {q}", "popular {q}"),
}
SORT_SUFFIXES = {
    "cheapest": (", cheapest first", "sorted by price low to high", "lowest price first"),
    "most_expensive": (", most expensive first", "sorted by price high to low"),
    "best_rated": (", best rated first", "sorted by rating", "top rated first"),
    "most_popular": (", most popular first", "sorted by popularity"),
}
SORT_FOLLOW_UPS = {
    "cheapest": ("cheaper", "something cheaper", "anything cheaper?", "cheaper ones please")
    + ("got anything less expensive", "show me cheaper options", "too pricey, cheaper?"),
    "most_expensive": ("most expensive first", "sort by price high to low", "priciest ones?"),
    "best_rated": ("which are the best rated", "top rated ones?", "sort by rating"),
    "most_popular": ("whats most popular", "most popular ones?", "sort by popularity"),
}
FOLLOW_UP_WORDS = {
    "colour": ("in {v}?", "do you have it in {v}", "any in {v}?", "{v} ones?")
    + ("got that in {v}", "can i get it in {v}", "what about {v}", "only {v} ones"),
    "brand": ("what about {v}", "anything from {v}?", "do you have {v}", "only {v} please")
    + ("show me {v} ones", "any by {v}", "how about {v}", "i prefer {v}"),
    "size": (
        "do you have it in size {v}",
        "size {v}?",
        "i need a size {v}",
        "got them in size {v}?",
    )
    + ("in size {v} please", "anything in sz {v}", "size {v} available?", "my size is {v}"),
    "material": ("any in {v}?", "something in {v}", "made of {v}?", "i'd prefer {v}")
    + ("what about {v} ones", "do they come in {v}"),
    "price_max": ("under {v}", "under ${v}", "anything below ${v}?", "max {v}")
    + ("only stuff under {v} please", "my budget is ${v}", "less than {v} dollars?"),
    "price_min": ("over {v} only", "at least ${v}", "something above ${v}", "nothing under ${v}"),
    "switch": ("show me {q} instead", "actually i need {q}", "never mind, {q}", "what about {q}?")
    + ("lets look at {q}", "forget that, do you have {q}", "ok now {q}", "and {q}?"),
}
DETAIL_WORDS = (
    ("tell me more about the {o} one", "what material is the {o} one", "more info on #{n}")
    + ("details on number {n}", "what sizes does the {o} one come in", "is the {o} one waterproof?")
    + ("how much is number {n}", "reviews for the {o} one?", "can you describe option {n}")
    + ("whats special about the {o} one",)
)
NAMED_DETAIL_WORDS = (
    ("is the {b} {q} waterproof?", "tell me about the {b} {q}", "more details on the {b} {q}")
    + ("what colours does the {b} {q} come in", "how are the reviews on the {b} {q}")
    + ("whats the {b} {q} made of", "does the {b} {q} run small", "specs for the {b} {q}")
)
COMPARE_WORDS = (
    ("compare the {o1} and {o2}", "compare {n1} and {n2}", "which is better, {n1} or {n2}?")
    + ("{o1} vs {o2} one", "whats the difference between {n1} and {n2}", "is {n1} better than {n2}")
    + ("how do the {o1} and {o2} ones compare", "{o1} or {o2}, which would you pick")
)
SMALL_TALK = {
    "greeting": ("hi", "hello there", "hey!", "good morning", "hiya", "hey there")
    + ("good evening", "hello", "hi!", "yo", "morning!", "hey, how's it going"),
    "goodbye": ("bye", "that's all, thanks bye", "see ya", "gotta go, bye", "ok bye", "goodbye!")
    + ("im done, bye", "talk later", "bye for now", "thats it for today, bye"),
    "thanks": ("thank you so much", "thx", "cheers", "thanks!", "ty", "great, thanks")
    + ("perfect thank you", "appreciate it", "thanks a lot", "awesome thanks"),
}


def generate_shopping_turns(
    products: Sequence[Product], n: int, seed: int = 0, split: str = "train"
) -> list[dict]:
    """Write `n` labelled shopper turns about `products`; the same arguments give the same rows.

    About 55% are first-turn searches, 25% follow-up refinements, 10% product_details or
    compare_products and 10% greeting/goodbye/thanks (shares in ROW_SHARES). Only products
    with a "type" attribute are used; raises ValueError when there are none.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, but got {split!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, but got {n}")
    writer = _TurnWriter(products, random.Random(f"shopping-turns:{split}:{seed}"), split)
    counts = {kind: round(share * n) for kind, share in ROW_SHARES}
    counts["search"] += n - sum(counts.values())
    schedule = [kind for kind, count in counts.items() for _ in range(max(0, count))]
    writer.rng.shuffle(schedule)
    return [writer.row(kind) for kind in schedule[:n]]


class _TurnWriter:
    """Writes rows of each kind from one random generator and the catalog's values."""

    def __init__(self, products: Sequence[Product], rng: random.Random, split: str) -> None:
        self.rng, self.split = rng, split
        self.products = [p for p in products if p.attributes.get("type")]
        if not self.products:
            raise ValueError("need at least one product with a 'type' attribute")
        self.by_type: dict[str, list[Product]] = {}
        self.by_category: dict[str, list[Product]] = {}
        for product in self.products:
            self.by_type.setdefault(product.attributes["type"], []).append(product)
            self.by_category.setdefault(product.category or "", []).append(product)

    def pick(self, templates: Sequence[str]) -> str:
        """A template of this split's share of the family (held-out: positions 1, 5, 9, ...)."""
        held_out = self.split == "eval"
        return self.rng.choice([t for i, t in enumerate(templates) if (i % 4 == 1) == held_out])

    def row(self, kind: str) -> dict:
        rng, product = self.rng, self.rng.choice(self.products)
        previous, query, protected = None, "", []
        if kind == "search":
            text, slots, protected = self.search(product, by_category=self._by_category(product))
            intent, query = "search_products", slots.get("query", "")
        elif kind == "follow_up":
            previous = self.search_state(product)
            text, slots, protected = self.refine(product, previous)
            intent, query = "search_products", slots.get("query", "")
        elif kind == "details" and product.brand and rng.random() < 0.35:
            previous = self.search_state(product) if rng.random() < 0.7 else None
            query = (previous or {}).get("query") or rng.choice(_phrases(product))
            brand = product.brand.lower()
            text = self.pick(NAMED_DETAIL_WORDS).format(b=brand, q=query)
            slots, protected, intent = {"query": query, "brand": brand}, [brand], "product_details"
        elif kind in ("details", "compare"):
            previous = self.search_state(product)
            refs = sorted(rng.sample(range(1, 6), 2 if kind == "compare" else 1))
            names = {f"o{i}": ORDINALS[r - 1] for i, r in enumerate(refs, 1)}
            names |= {f"n{i}": str(r) for i, r in enumerate(refs, 1)}
            names |= {"o": names["o1"], "n": names["n1"]}
            template = self.pick(COMPARE_WORDS if kind == "compare" else DETAIL_WORDS)
            text, slots = template.format(**names), {"product_refs": refs}
            intent = "compare_products" if kind == "compare" else "product_details"
        else:
            if kind != "greeting" and rng.random() < 0.7:
                previous = self.search_state(product)
            text, slots, intent = self.pick(SMALL_TALK[kind]), {}, kind
        slots = clean_slots(slots)
        text = self.finish(text, protected, query)
        before = None if previous is None else {"intent": "search_products", "slots": previous}
        state = dict(slots) if previous is None else merge_slots(previous, slots)
        return {"text": text, "intent": intent, "slots": slots, "previous": before, "state": state}

    def search(self, product: Product, by_category: bool) -> tuple[str, dict, list[str]]:
        """A first-turn search for `product`'s type (or its category) with 0-4 constraints."""
        rng, slots, protected = self.rng, {}, []
        wrapper, pre_ok = self.pick(SEARCH_WRAPPERS), True
        if by_category:
            template, surface = self.pick(CATEGORY_CORES), self._category_words(product)
            core, slots["category"] = template.format(c=surface), product.category.lower()
            protected.append(surface)
            pre_ok = template.startswith("{c}")  # "red shoes", not "red something in shoes"
        else:
            core = slots["query"] = rng.choice(_phrases(product))
        options = self._constraints(product, slots.get("query", ""))
        if by_category or rng.random() < 0.7:
            options.pop("category", None)
        count = rng.choices(range(len(EXTRA_SLOT_WEIGHTS)), EXTRA_SLOT_WEIGHTS)[0] - by_category
        chosen = set(rng.sample(sorted(options), max(0, min(count, len(options)))))
        pre, post = [], []
        for name, value in options.items():
            if name not in chosen:
                continue
            if name == "sort":
                slots["sort"] = value
                if rng.random() < 0.5:
                    wrapper = self.pick(SORT_WRAPPERS[value])
                else:
                    post.append(self.pick(SORT_SUFFIXES[value]))
            elif name == "price":
                words, prices = self._price_words(product.price or 0.0)
                post.append(words)
                slots.update(prices)
            else:
                slots[name], shown = value, self._shown(name, value)
                protected.append(shown)
                if name in ("colour", "brand", "material") and pre_ok and rng.random() < 0.5:
                    pre.append(shown)
                else:
                    post.append(self.pick(MODIFIER_WORDS[name]).format(v=shown))
        phrase = " ".join(pre + [core] + post).replace(" ,", ",")
        return wrapper.format(q=phrase), slots, protected

    def search_state(self, product: Product) -> dict:
        """The merged slots after a search for `product`, sometimes already refined once."""
        state = clean_slots(self.search(product, self._by_category(product, 0.15))[1])
        if self.rng.random() < 0.3:  # still about `product`: no switch
            state = merge_slots(state, clean_slots(self.refine(product, state, switch=False)[1]))
        return state

    def refine(
        self, product: Product, state: dict, switch: bool = True
    ) -> tuple[str, dict, list[str]]:
        """A follow-up to `state`: one new constraint, a sort, or a switch to another product."""
        rng, kind = self.rng, product.attributes["type"]
        same_type, same_category = self.by_type[kind], self.by_category[product.category or ""]
        materials = {p.attributes.get("material", "").lower() for p in same_type}
        query_words = set(state.get("query", "").split())
        values = {
            "colour": {c for p in same_type for c in p.colours},
            "brand": {p.brand.lower() for p in same_category if p.brand},
            "size": set(product.sizes),
            "material": {m for m in materials if m and not set(m.split()) & query_words},
        }
        options = {k: sorted(v - {state.get(k)}) for k, v in values.items() if v - {state.get(k)}}
        options |= {"sort": [s for s in SORT_FOLLOW_UPS if s != state.get("sort")]}
        options |= {"price": ["max", "max", "min"]} if product.price else {}
        options |= {"switch": ["switch"]} if switch else {}
        # budgets and sorts come up most
        name = rng.choice(sorted(options) + ["sort"] + ["price"] * bool(product.price))
        value = rng.choice(options[name])
        if name == "sort":
            value = "cheapest" if rng.random() < 0.5 and "cheapest" in options[name] else value
            return self.pick(SORT_FOLLOW_UPS[value]), {"sort": value}, []
        if name == "price":
            bound = "price_min" if value == "min" else "price_max"
            budget = _nice_price((product.price or 0.0) * rng.uniform(0.5, 1.1), below=True)
            return self.pick(FOLLOW_UP_WORDS[bound]).format(v=budget), {bound: budget}, []
        if name == "switch":
            return self._switch(product, state)
        shown = self._shown(name, value)
        return self.pick(FOLLOW_UP_WORDS[name]).format(v=shown), {name: value}, [shown]

    def finish(self, text: str, protected: list[str], query: str) -> str:
        """Typos in ~15% of messages (never inside slot values but sometimes in the query)."""
        rng = self.rng
        if rng.random() < TYPO_RATE:
            keep = protected + ([query] if query and rng.random() < 0.5 else [])
            text = _misspell_except(text, keep, rng)
        return text[:1].upper() + text[1:] if rng.random() < 0.12 else text

    def _switch(self, product: Product, state: dict) -> tuple[str, dict, list[str]]:
        """A new product type (query) or another category; merge_slots resets either way,
        except a query that narrows a category browse."""
        rng = self.rng
        others = [p for p in self.products if p.attributes["type"] != product.attributes["type"]]
        other = rng.choice(others or self.products)
        category = (other.category or "").lower()
        template = self.pick(FOLLOW_UP_WORDS["switch"])
        if state.get("query"):
            as_query = rng.random() < 0.75 or not category or category == state.get("category")
        else:
            as_query = other.category == product.category or not category
        if as_query:
            query = rng.choice(_phrases(other))
            return template.format(q=query), {"query": query}, []
        surface = self._category_words(other)
        core = self.pick(CATEGORY_CORES).format(c=surface)
        return template.format(q=core), {"category": category}, [surface]

    def _by_category(self, product: Product, chance: float = 0.12) -> bool:
        return bool(product.category) and self.rng.random() < chance

    def _constraints(self, product: Product, query: str) -> dict[str, str]:
        """Every constraint a search for `product` could name, in the order it reads best."""
        rng, attributes = self.rng, product.attributes
        material = attributes.get("material", "").lower()
        options = {
            "colour": rng.choice(product.colours) if product.colours else "",
            "brand": (product.brand or "").lower(),
            "material": "" if set(material.split()) & set(query.split()) else material,
            "size": rng.choice(product.sizes) if product.sizes else "",
            "category": (product.category or "").lower(),
            "price": "price" if product.price else "",
            "sort": rng.choice(list(SORT_WRAPPERS)),
        }
        return {name: value for name, value in options.items() if value}

    def _shown(self, name: str, value: str) -> str:
        """How the shopper writes a slot value; the canonical value always stays visible."""
        if name == "colour":
            return self.rng.choice([w for w in COLOUR_WORDS.get(value, (value,)) if value in w])
        if name == "size" and value.isalpha() and self.rng.random() < 0.5:
            return value.upper()
        return value

    def _category_words(self, product: Product) -> str:
        category = (product.category or "").lower()
        return category.replace("&", "and") if self.rng.random() < 0.3 else category

    def _price_words(self, price: float) -> tuple[str, dict]:
        rng = self.rng
        kind = rng.choice(("max", "max", "max", "min", "range"))
        high = _nice_price(price * rng.uniform(1.0, 1.3))
        low = _nice_price(price * rng.uniform(0.6, 0.9), below=True)
        if kind == "max" or low >= high:
            return self.pick(MAX_PRICE_WORDS).format(v=high), {"price_max": float(high)}
        if kind == "min":
            return self.pick(MIN_PRICE_WORDS).format(v=low), {"price_min": float(low)}
        words = self.pick(PRICE_RANGE_WORDS).format(lo=low, hi=high)
        return words, {"price_min": float(low), "price_max": float(high)}


def _phrases(product: Product) -> tuple[str, ...]:
    """The shopper's words for `product`'s type; the type key itself outside the demo types."""
    kind = product.attributes["type"].lower()
    try:
        return product_type(kind).phrases
    except KeyError:
        return (kind,)


def _nice_price(price: float, below: bool = False) -> int:
    """The round budget next to `price`: the nearest one above it, or below it."""
    if below:
        return max([v for v in NICE_PRICES if v <= price] or [NICE_PRICES[0]])
    return min([v for v in NICE_PRICES if v >= price] or [NICE_PRICES[-1]])


def _misspell_except(text: str, keep: list[str], rng: random.Random) -> str:
    """`misspell` with the `keep` phrases masked by tokens it cannot touch (not alphabetic)."""
    masks = {}
    for phrase in sorted(set(filter(None, keep)), key=len, reverse=True):
        token = f"\x00{len(masks)}\x00"
        masked = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", token, text)
        if masked != text:
            masks[token], text = phrase, masked
    text = misspell(text, rng)
    for token, phrase in masks.items():
        text = text.replace(token, phrase)
    return text
