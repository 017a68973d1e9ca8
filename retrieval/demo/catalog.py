"""Generate the demo catalog: invented but realistic products for the Shopbot Demo Store.

Every product is drawn from `product_types.py` with its own random generator seeded by
(seed, index), so a catalog is fully determined by (n, seed) and a bigger catalog starts with
the same products as a smaller one:

    >>> generate_catalog(3)[0].id
    'P00001'
    >>> generate_catalog(3) == generate_catalog(50)[:3]
    True

Attributes carry what the filters and the eval-set judge need: "type", "colour", "size",
"material", "gender", "features", "use" and one type-specific key ("capacity", "age", ...).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from pathlib import Path

from retrieval.catalog import Product
from retrieval.demo.product_types import (
    BRANDS,
    CATEGORY_CLOSERS,
    MODEL_NAMES,
    MODEL_SUFFIXES,
    PRODUCT_TYPES,
    SIZE_RUNS,
    TIER_PRICE,
    Brand,
    ProductType,
)
from retrieval.demo.traits import FEATURES, USES

OUT_OF_STOCK_RATE = 0.08
GENDER_TITLES = {"men": "Men's", "women": "Women's", "unisex": "Unisex"}
OPENERS = (
    "The {brand} {model} is {a_colour_material_noun} {pitch}.",
    "Meet the {model} from {brand}: {a_material_noun} {pitch}.",
    "{brand}'s {model} is {a_noun} {pitch}.",
    "This {colour_noun} from {brand} is {pitch}.",
)


def generate_catalog(n: int = 1200, seed: int = 0) -> list[Product]:
    """Invent `n` products with ids "P00001", "P00002", ...; the same (n, seed) gives the same list.

    Product i depends only on (seed, i), so `generate_catalog(10)` equals the first ten
    products of `generate_catalog(1000)`. About 8% are out of stock.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, but got {n}")
    brands_by_category: dict[str, list[Brand]] = {}
    for brand in BRANDS:
        brands_by_category.setdefault(brand.category, []).append(brand)
    return [
        _make_product(i, random.Random(seed * 1_000_003 + i), brands_by_category)
        for i in range(1, n + 1)
    ]


def write_catalog_jsonl(products: Iterable[Product], path: Path | str) -> None:
    """Write products as catalog JSONL (one product object per line), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for product in products:
            out.write(json.dumps(product.model_dump(), ensure_ascii=False) + "\n")


def _make_product(index: int, rng: random.Random, brands: dict[str, list[Brand]]) -> Product:
    kind = rng.choice(PRODUCT_TYPES)
    brand = rng.choice(brands[kind.category])
    model = _model_name(kind.category, rng)
    gender = rng.choice(kind.genders) if kind.genders else ""
    colour = rng.choice(kind.colours) if kind.colours else ""
    material = rng.choice(kind.materials) if kind.materials else ""
    spec_value = rng.choice(kind.spec.values) if kind.spec else ""
    extra = [f for f in kind.features if f not in kind.always]
    features = list(kind.always) + rng.sample(extra, min(len(extra), rng.randint(1, 2)))
    uses = rng.sample(kind.uses, min(len(kind.uses), rng.choice((1, 1, 2))))

    product_id = f"P{index:05d}"
    attributes = {"type": kind.key}
    if colour:
        attributes["colour"] = colour
    if kind.sizing:
        attributes["size"] = ", ".join(_size_selection(kind.sizing, gender, rng))
    if material:
        attributes["material"] = material
    if gender:
        attributes["gender"] = gender
    attributes["features"] = ", ".join(features)
    attributes["use"] = ", ".join(uses)
    if kind.spec:
        attributes[kind.spec.key] = spec_value

    review_count = _review_count(rng)
    return Product(
        id=product_id,
        title=_title(kind, brand, model, gender, colour, material, spec_value, features, rng),
        description=_description(
            kind, brand, model, colour, material, spec_value, features, uses, rng
        ),
        category=kind.category,
        brand=brand.name,
        price=_price(kind, brand, rng),
        currency="USD",
        rating=_rating(review_count, brand, rng),
        review_count=review_count,
        in_stock=rng.random() >= OUT_OF_STOCK_RATE,
        image_url=f"/images/{product_id}.svg",
        attributes=attributes,
    )


def _model_name(category: str, rng: random.Random) -> str:
    name = rng.choice(MODEL_NAMES[category])
    suffix = rng.choice(MODEL_SUFFIXES)
    return f"{name} {suffix}" if suffix else name


def _size_selection(sizing: str, gender: str, rng: random.Random) -> list[str]:
    """A contiguous run of sizes with a few sold-out gaps; always at least three sizes."""
    run = SIZE_RUNS[(sizing, gender)]
    length = rng.randint(max(3, math.ceil(len(run) * 0.6)), len(run))
    start = rng.randint(0, len(run) - length)
    window = run[start : start + length]
    kept = [size for size in window if rng.random() >= 0.1]
    return kept if len(kept) >= 3 else list(window)


def _title(
    kind: ProductType,
    brand: Brand,
    model: str,
    gender: str,
    colour: str,
    material: str,
    spec_value: str,
    features: list[str],
    rng: random.Random,
) -> str:
    """E.g. "Trailblaze Men's Ridgeline 3 Waterproof Hiking Boot – Brown Leather"."""
    words = [brand.name]
    if gender and (gender != "unisex" or rng.random() < 0.3):
        words.append(GENDER_TITLES[gender])
    words.append(model)
    if kind.spec and kind.spec.before:
        words.append(_fill(kind.spec.before, spec_value))
    titled = [FEATURES[f].title for f in features if FEATURES[f].title]
    if titled and rng.random() < 0.7:
        words.append(rng.choice(titled))
    words.append(kind.name)
    if kind.spec and kind.spec.after:
        words.append(_fill(kind.spec.after, spec_value))
    tail = [colour.title()] if colour else []
    if material and (not tail or rng.random() < 0.6):
        tail.append(material.title())
    title = " ".join(words)
    return f"{title} – {' '.join(tail)}" if tail else title


def _description(
    kind: ProductType,
    brand: Brand,
    model: str,
    colour: str,
    material: str,
    spec_value: str,
    features: list[str],
    uses: list[str],
    rng: random.Random,
) -> str:
    """Two to four sentences: an opener, what the features do, what it is good for."""
    noun = _noun(kind.name)
    noun_words = set(noun.split())
    if material and noun_words & set(material.split()):
        material = ""  # avoids "a goose down down jacket"
    opener = rng.choice(OPENERS).format(
        brand=brand.name,
        model=model,
        pitch=rng.choice(kind.pitches),
        a_colour_material_noun=_with_article(" ".join(w for w in (colour, material, noun) if w)),
        a_material_noun=_with_article(" ".join(w for w in (material, noun) if w)),
        a_noun=_with_article(noun),
        colour_noun=" ".join(w for w in (colour, noun) if w),
    )
    sentences = [opener]
    shown = rng.sample(features, min(len(features), rng.randint(1, 2)))
    sentences += [rng.choice(FEATURES[tag].phrases) for tag in shown]
    sentences.append(rng.choice(USES[uses[0]].phrases))
    if kind.spec and kind.spec.sentence:
        sentences.append(_fill(kind.spec.sentence, spec_value))
    if len(sentences) < 4 and rng.random() < 0.5:
        sentences.append(rng.choice(CATEGORY_CLOSERS[kind.category]))
    return " ".join(sentences[:4])


def _price(kind: ProductType, brand: Brand, rng: random.Random) -> float:
    """Log-uniform within the type's range, shifted by the brand tier, with retail endings."""
    low, high = kind.price
    raw = low * (high / low) ** rng.random() * TIER_PRICE[brand.tier]
    raw = min(max(raw, low * 0.6), high * 1.5)
    if raw < 100:
        return math.floor(raw) + 0.99
    return round(raw / 5) * 5 - 0.01


def _review_count(rng: random.Random) -> int:
    return max(1, int(math.exp(rng.gauss(3.8, 1.6))))


def _rating(review_count: int, brand: Brand, rng: random.Random) -> float:
    """Few reviews give noisy ratings; premium brands rate a little higher on average."""
    tier_shift = {"value": -0.15, "standard": 0.0, "premium": 0.1}[brand.tier]
    spread = 0.9 if review_count < 10 else 0.45
    rating = rng.gauss(4.1 + tier_shift, spread)
    return round(min(5.0, max(1.0, rating)), 1)


def _noun(name: str) -> str:
    """Lower-case a type name but keep acronyms: "RC Car" -> "RC car"."""
    return " ".join(w if w.isupper() else w.lower() for w in name.split())


def _with_article(phrase: str) -> str:
    article = "an" if phrase[:1].lower() in "aeiou" else "a"
    return f"{article} {phrase}"


def _fill(template: str, value: str) -> str:
    return template.format(v=value, V=value.title())
