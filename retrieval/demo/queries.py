"""A labelled retrieval eval set written from a catalog: shopper queries plus graded qrels.

Queries read the way shoppers type: plain requests in their own words ("trainers for
jogging"), typos ("hedphones wireles"), vague needs ("something to keep me dry on my bike
commute") and constraints on colour, brand, material, size, price, stock and rating, alone
or combined ("womens red stridewell running shoes size 8 under $120").

Labels never come from a search system. Each query carries a `Need` in catalog terms and
`grade` judges every product of the relevant types by its structured attributes:

- grade 2: the product meets every part of the need;
- grade 1: it misses exactly one part (wrong colour or size, up to 20% over budget, out of
  stock, another brand, a close substitute type, ...);
- otherwise it is left out of the qrels.

Queries too broad to judge usefully (more than MAX_GRADE2 full matches or MAX_RELEVANT
listed products) are narrowed with one more constraint taken from a matching product, or
dropped. Every query has at least one grade-2 product.

    shopbot demo export ./demo   # writes catalog.jsonl, queries.jsonl, qrels.tsv
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from retrieval.catalog import Product
from retrieval.demo.catalog import generate_catalog, write_catalog_jsonl
from retrieval.demo.product_types import PRODUCT_TYPES, ProductType, product_type
from retrieval.demo.shopper_words import (
    APPAREL_SIZE_WORDS,
    COLOUR_WORDS,
    GENDER_WORDS,
    IN_STOCK_WORDS,
    MAX_PRICE_WORDS,
    NICE_PRICES,
    PRICE_RANGE_WORDS,
    RATING_WORDS,
    TYPE_GROUPS,
    VAGUE_NEEDS,
    WRAPPERS,
    misspell,
)

MAX_GRADE2 = 40
MAX_RELEVANT = 120
OVER_BUDGET_GRACE = 0.2
KIND_SHARES = (
    ("plain", 0.16),
    ("vague", 0.20),
    ("colour", 0.08),
    ("brand", 0.07),
    ("material", 0.05),
    ("size", 0.07),
    ("price", 0.11),
    ("stock_rating", 0.05),
    ("combo", 0.09),
    ("misspelled", 0.12),
)
MISSPELL_BASES = ("plain", "plain", "plain", "colour", "price", "vague", "brand", "combo", "size")
BRAND_ONLY_WORDS = (
    "anything from {b}",
    "{b} products",
    "what does {b} sell",
    "{b} stuff",
    "show me {b}",
)
PRE_ORDER = ("rating", "gender", "colour", "brand", "material", "size")
POST_ORDER = ("gender", "material", "colour", "brand", "size", "rating", "stock", "price")


@dataclass(frozen=True)
class Need:
    """What a query asks for, in catalog terms. Empty fields are not part of the need."""

    types: tuple[str, ...]
    substitutes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    spec: tuple[str, tuple[str, ...]] | None = None
    gender: str = ""
    colour: str = ""
    size: str = ""
    material: str = ""
    brand: str = ""
    max_price: float | None = None
    min_price: float | None = None
    in_stock: bool = False
    min_rating: float | None = None


def grade(need: Need, product: Product) -> int:
    """Judge one product against a need: 2 meets all of it, 1 misses one part, 0 otherwise.

    Far misses count twice: more than 20% over budget (or under a price floor), or a rating
    more than half a star under the asked minimum.
    """
    attributes = product.attributes
    kind = attributes.get("type")
    if kind in need.types:
        misses = 0
    elif kind in need.substitutes:
        misses = 1
    else:
        return 0
    if need.tags:
        tags = _split(attributes.get("features")) + _split(attributes.get("use"))
        misses += not any(tag in tags for tag in need.tags)
    if need.spec:
        key, accepted = need.spec
        misses += attributes.get(key) not in accepted
    if need.gender and attributes.get("gender", "unisex") not in (need.gender, "unisex"):
        misses += 1
    if need.colour:
        misses += need.colour not in product.colours
    if need.size:
        misses += need.size not in product.sizes
    if need.material:
        misses += attributes.get("material") != need.material
    if need.brand:
        misses += product.brand != need.brand
    price = product.price if product.price is not None else 0.0
    if need.max_price is not None and price > need.max_price:
        misses += 1 if price <= need.max_price * (1 + OVER_BUDGET_GRACE) else 2
    if need.min_price is not None and price < need.min_price:
        misses += 1 if price >= need.min_price * (1 - OVER_BUDGET_GRACE) else 2
    if need.in_stock:
        misses += not product.in_stock
    if need.min_rating is not None:
        rating = product.rating or 0.0
        if rating < need.min_rating:
            misses += 1 if rating >= need.min_rating - 0.5 else 2
    return max(0, 2 - misses)


def generate_eval_set(
    products: list[Product], n_queries: int = 300, seed: int = 0
) -> tuple[list[dict], list[tuple[str, str, int]]]:
    """Write `n_queries` shopper queries for `products` and judge the whole catalog for each.

    Returns queries `{"id": "q001", "text": ..., "kind": ...}` (kind is one of the names in
    KIND_SHARES) and qrels `(query_id, product_id, grade)` with grades 1 and 2 only, best
    first. Deterministic given (products, n_queries, seed). Raises ValueError when the
    catalog is too small or too uniform to yield that many distinct, judgeable queries.
    """
    if n_queries < 0:
        raise ValueError(f"n_queries must be >= 0, but got {n_queries}")
    rng = random.Random(seed)
    index = _CatalogIndex(products)
    schedule = _schedule(n_queries, rng)
    queries: list[dict] = []
    qrels: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    attempts = 0
    while len(queries) < n_queries:
        attempts += 1
        if attempts > 40 * n_queries + 200:
            raise ValueError(
                f"could only write {len(queries)} of {n_queries} queries from a catalog of "
                f"{len(products)} products"
            )
        kind = schedule[len(queries)] if attempts < 20 * n_queries else rng.choice(schedule)
        made = _make_query(kind, index, rng)
        if made is None or made[0].lower() in seen:
            continue
        text, judged = made
        seen.add(text.lower())
        query_id = f"q{len(queries) + 1:03d}"
        queries.append({"id": query_id, "text": text, "kind": kind})
        qrels.extend((query_id, product_id, g) for product_id, g in judged)
    return queries, qrels


def write_eval_set(
    out_dir: Path, n_products: int = 1200, n_queries: int = 300, seed: int = 0
) -> None:
    """Generate the demo catalog and its eval set into `out_dir`.

    Writes `catalog.jsonl`, `queries.jsonl` (`{"id", "text"}` per line) and `qrels.tsv`
    (header `query_id\\tproduct_id\\tgrade`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    products = generate_catalog(n_products, seed)
    queries, qrels = generate_eval_set(products, n_queries, seed)
    write_catalog_jsonl(products, out_dir / "catalog.jsonl")
    with (out_dir / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query in queries:
            out.write(json.dumps({"id": query["id"], "text": query["text"]}) + "\n")
    with (out_dir / "qrels.tsv").open("w", encoding="utf-8") as out:
        out.write("query_id\tproduct_id\tgrade\n")
        for query_id, product_id, g in qrels:
            out.write(f"{query_id}\t{product_id}\t{g}\n")


# Drafting queries -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Modifier:
    """One constraint in words: `pre` goes before the product words, `post` after them."""

    slot: str
    post: str
    updates: dict[str, object] = field(default_factory=dict, hash=False)
    pre: str = ""


@dataclass(frozen=True)
class _Draft:
    core: str
    need: Need
    kind: ProductType | None = None
    mods: tuple[_Modifier, ...] = ()
    sentence: bool = False  # a whole need in words: constraints can only follow it
    wrapper: str = "{q}"
    capitalize: bool = False

    def add(self, mod: _Modifier) -> _Draft:
        return replace(self, mods=self.mods + (mod,), need=replace(self.need, **mod.updates))

    def text(self) -> str:
        before = [m for m in self.mods if m.pre and not self.sentence]
        after = [m for m in self.mods if not (m.pre and not self.sentence)]
        before.sort(key=lambda m: PRE_ORDER.index(m.slot))
        after.sort(key=lambda m: POST_ORDER.index(m.slot))
        words = [m.pre for m in before] + [self.core] + [m.post for m in after]
        text = self.wrapper.format(q=" ".join(words))
        return text[:1].upper() + text[1:] if self.capitalize else text


class _CatalogIndex:
    """Products grouped the ways the query builders and the judge look them up."""

    def __init__(self, products: list[Product]) -> None:
        self.products = [p for p in products if p.attributes.get("type") in _TYPE_KEYS]
        self.by_id = {p.id: p for p in self.products}
        self.by_type: dict[str, list[Product]] = {}
        for product in self.products:
            self.by_type.setdefault(product.attributes["type"], []).append(product)
        self.with_colour = [p for p in self.products if p.colours]
        self.with_material = [p for p in self.products if p.attributes.get("material")]
        self.with_size = [p for p in self.products if p.sizes]

    def judge(self, need: Need) -> list[tuple[str, int]]:
        judged = []
        for kind in dict.fromkeys(need.types + need.substitutes):
            for product in self.by_type.get(kind, ()):
                g = grade(need, product)
                if g:
                    judged.append((product.id, g))
        return sorted(judged, key=lambda item: (-item[1], item[0]))


_TYPE_KEYS = frozenset(t.key for t in PRODUCT_TYPES)


def _schedule(n_queries: int, rng: random.Random) -> list[str]:
    counts = {kind: round(share * n_queries) for kind, share in KIND_SHARES}
    counts["plain"] += n_queries - sum(counts.values())
    schedule = [kind for kind, count in counts.items() for _ in range(max(0, count))]
    rng.shuffle(schedule)
    return schedule[:n_queries] or ["plain"]


def _make_query(
    kind: str, index: _CatalogIndex, rng: random.Random
) -> tuple[str, list[tuple[str, int]]] | None:
    """Draft, judge and if needed narrow one query of this kind; None if it didn't work out."""
    base = rng.choice(MISSPELL_BASES) if kind == "misspelled" else kind
    if not index.products:
        return None
    draft = _BUILDERS[base](index, rng)
    if draft is None:
        return None
    for _ in range(4):
        judged = index.judge(draft.need)
        full = [product_id for product_id, g in judged if g == 2]
        if not full:
            return None
        if len(full) <= MAX_GRADE2 and len(judged) <= MAX_RELEVANT:
            break
        if base == "plain":
            return None
        target = index.by_id[rng.choice(full)]
        mod = _narrowing_modifier(draft, target, rng)
        if mod is None:
            return None
        draft = draft.add(mod)
    else:
        return None
    text = draft.text()
    if kind == "misspelled":
        typo = misspell(text, rng)
        if typo == text:
            return None
        text = typo
    return text, judged


def _wrapped(rng: random.Random) -> dict:
    wrapper = rng.choice(WRAPPERS) if rng.random() < 0.35 else "{q}"
    return {"wrapper": wrapper, "capitalize": rng.random() < 0.1}


def _type_draft(target: Product, rng: random.Random) -> _Draft:
    kind = product_type(target.attributes["type"])
    need = Need(types=(kind.key,), substitutes=kind.substitutes)
    return _Draft(rng.choice(kind.phrases), need, kind, **_wrapped(rng))


def _build_plain(index: _CatalogIndex, rng: random.Random) -> _Draft | None:
    if rng.random() < 0.15:
        words, types, substitutes = rng.choice(TYPE_GROUPS)
        if not any(t in index.by_type for t in types):
            return None
        return _Draft(words, Need(types=types, substitutes=substitutes), **_wrapped(rng))
    return _type_draft(rng.choice(index.products), rng)


def _build_vague(index: _CatalogIndex, rng: random.Random) -> _Draft | None:
    need = rng.choice(VAGUE_NEEDS)
    return _Draft(
        rng.choice(need.texts),
        Need(types=need.types, substitutes=need.substitutes, tags=need.tags, spec=need.spec),
        sentence=True,
        capitalize=rng.random() < 0.1,
    )


def _build_with(
    pool: Callable[[_CatalogIndex], list[Product]],
    modifiers: Callable[[Product, _Draft, random.Random], list[_Modifier | None]],
) -> Callable[[_CatalogIndex, random.Random], _Draft | None]:
    """A builder that drafts "<product words> + constraints" from a random product in a pool."""

    def build(index: _CatalogIndex, rng: random.Random) -> _Draft | None:
        candidates = pool(index)
        if not candidates:
            return None
        target = rng.choice(candidates)
        draft = _type_draft(target, rng)
        mods = modifiers(target, draft, rng)
        if not mods or any(m is None for m in mods):
            return None
        for mod in mods:
            draft = draft.add(mod)
        return draft

    return build


def _build_brand(index: _CatalogIndex, rng: random.Random) -> _Draft | None:
    if rng.random() < 0.75:
        return _build_with(lambda i: i.products, lambda t, d, r: [_brand_mod(t, d, r)])(index, rng)
    target = rng.choice(index.products)
    category = target.category
    types = tuple(t.key for t in PRODUCT_TYPES if t.category == category)
    words = rng.choice(BRAND_ONLY_WORDS).format(b=(target.brand or "").lower())
    return _Draft(words, Need(types=types, brand=target.brand or ""), sentence=True)


def _price_mods(target: Product, draft: _Draft, rng: random.Random) -> list[_Modifier | None]:
    make = _range_mod if rng.random() < 0.35 else _max_price_mod
    return [make(target, draft, rng)]


def _stock_rating_mods(target: Product, draft: _Draft, rng: random.Random) -> list:
    return [_stock_mod(target, draft, rng) if rng.random() < 0.5 else _rating_mod(target, rng)]


def _size_mods(target: Product, draft: _Draft, rng: random.Random) -> list:
    mods = [_size_mod(target, draft, rng)]
    gender = _gender_mod(target, draft, rng)
    if gender and rng.random() < 0.6:
        mods.insert(0, gender)
    return mods


def _combo_mods(target: Product, draft: _Draft, rng: random.Random) -> list:
    options = [
        _gender_mod(target, draft, rng),
        _colour_mod(target, draft, rng),
        _brand_mod(target, draft, rng),
        _material_mod(target, draft, rng),
        _size_mod(target, draft, rng),
        _stock_mod(target, draft, rng) if rng.random() < 0.3 else None,
        _rating_mod(target, rng) if rng.random() < 0.3 else None,
    ]
    available = [m for m in options if m is not None]
    rng.shuffle(available)
    mods = available[: rng.randint(2, 3)]
    if rng.random() < 0.7 or len(mods) < 3:
        mods.append(_max_price_mod(target, draft, rng))
    return mods if len(mods) >= 3 else [None]


_BUILDERS: dict[str, Callable[[_CatalogIndex, random.Random], _Draft | None]] = {
    "plain": _build_plain,
    "vague": _build_vague,
    "brand": _build_brand,
    "colour": _build_with(lambda i: i.with_colour, lambda t, d, r: [_colour_mod(t, d, r)]),
    "material": _build_with(lambda i: i.with_material, lambda t, d, r: [_material_mod(t, d, r)]),
    "size": _build_with(lambda i: i.with_size, _size_mods),
    "price": _build_with(lambda i: i.products, _price_mods),
    "stock_rating": _build_with(lambda i: i.products, _stock_rating_mods),
    "combo": _build_with(lambda i: i.with_size or i.products, _combo_mods),
}


# Constraints in words ---------------------------------------------------------------------


def _gender_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier | None:
    gender = target.attributes.get("gender", "")
    kind = draft.kind
    if gender not in GENDER_WORDS or kind is None or len(kind.genders) < 2:
        return None
    pre, post = GENDER_WORDS[gender]
    return _Modifier("gender", rng.choice(post), {"gender": gender}, _maybe(rng.choice(pre), rng))


def _colour_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier | None:
    if not target.colours:
        return None
    colour = target.colours[0]
    word = rng.choice(COLOUR_WORDS.get(colour, (colour,)))
    return _Modifier("colour", f"in {word}", {"colour": colour}, _maybe(word, rng))


def _brand_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier | None:
    if not target.brand:
        return None
    name = target.brand.lower()
    post = rng.choice((f"from {name}", f"by {name}"))
    return _Modifier("brand", post, {"brand": target.brand}, _maybe(name, rng))


def _material_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier | None:
    material = target.attributes.get("material", "")
    if not material or any(word in draft.core for word in material.split()):
        return None
    post = rng.choice((f"made of {material}", f"in {material}"))
    return _Modifier("material", post, {"material": material}, _maybe(material, rng, 0.7))


def _size_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier | None:
    if not target.sizes or draft.kind is None:
        return None
    size = rng.choice(target.sizes)
    sizing = draft.kind.sizing
    if sizing == "shoe":
        return _Modifier(
            "size", rng.choice((f"size {size}", f"in size {size}", f"sz {size}")), {"size": size}
        )
    if sizing == "apparel":
        short, long = APPAREL_SIZE_WORDS[size.upper()]
        article = "an" if long[0] in "aeiou" else "a"
        post = rng.choice((f"size {short}", f"in {long}", f"size {long}", f"in {article} {long}"))
        return _Modifier("size", post, {"size": size})
    if sizing == "waist":
        return _Modifier("size", rng.choice((f"{size} waist", f"size {size}")), {"size": size})
    post = rng.choice((f"for a {size} bed", f"{size} size"))
    return _Modifier("size", post, {"size": size}, _maybe(size, rng, 0.6))


def _max_price_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier:
    """A round budget at or just above the target's price: 87.99 -> "under $90" (or $100)."""
    price = target.price or 0.0
    above = [v for v in NICE_PRICES if v >= price] or [int(price) + 1]
    budget = above[1] if len(above) > 1 and rng.random() < 0.3 else above[0]
    words = rng.choice(MAX_PRICE_WORDS).format(v=budget)
    return _Modifier("price", words, {"max_price": float(budget)})


def _range_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier:
    price = target.price or 0.0
    below = [v for v in NICE_PRICES if v <= price * 0.85]
    above = [v for v in NICE_PRICES if v >= price * 1.15]
    if not below or not above:
        return _max_price_mod(target, draft, rng)
    low, high = below[-1], above[0]
    words = rng.choice(PRICE_RANGE_WORDS).format(lo=low, hi=high)
    return _Modifier("price", words, {"min_price": float(low), "max_price": float(high)})


def _stock_mod(target: Product, draft: _Draft, rng: random.Random) -> _Modifier | None:
    if not target.in_stock:
        return None
    return _Modifier("stock", rng.choice(IN_STOCK_WORDS), {"in_stock": True})


def _rating_mod(target: Product, rng: random.Random) -> _Modifier | None:
    rating = target.rating or 0.0
    options = [(words, floor, place) for words, floor, place in RATING_WORDS if rating >= floor]
    if not options:
        return None
    words, floor, place = rng.choice(options)
    pre = words if place == "pre" else ""
    post = words if place == "post" else f"that is {words}"
    return _Modifier("rating", post, {"min_rating": floor}, pre)


def _narrowing_modifier(draft: _Draft, target: Product, rng: random.Random) -> _Modifier | None:
    """One more constraint, true of `target`, for a slot the draft doesn't constrain yet."""
    used = {m.slot for m in draft.mods}
    probe = replace(draft, kind=draft.kind or product_type(target.attributes["type"]))
    options: list[_Modifier | None] = []
    if "price" not in used:
        options += [_max_price_mod(target, draft, rng)] * 3  # budgets are the usual narrowing
    for slot, make in (
        ("colour", _colour_mod),
        ("brand", _brand_mod),
        ("gender", _gender_mod),
        ("size", _size_mod),
        ("material", _material_mod),
    ):
        # "setting up a home office made of oak" reads badly; other constraints fit after a need
        if slot not in used and not (slot == "material" and draft.sentence):
            options.append(make(target, probe, rng))
    options = [m for m in options if m is not None]
    return rng.choice(options) if options else None


def _maybe(pre: str, rng: random.Random, chance: float = 0.6) -> str:
    """Use the before-the-noun wording with this chance, else leave only the after wording."""
    return pre if rng.random() < chance else ""


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",")] if value else []
