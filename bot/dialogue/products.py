"""The product side of a turn: a search under the carried slots, or the products the
shopper refers back to ("the second one", "compare 1 and 3").

Both return a `Found` value; the engine copies it into the turn. Comparisons are never
left to the LM: the reply's comparison table is computed from the records (see
`bot.dialogue.turn.comparison_table`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.grounding import MAX_FACT_PRODUCTS
from bot.nlu.parser import Parse
from bot.nlu.schema import merge_slots
from bot.shop import Shop
from bot.stores.sessions import SessionState
from retrieval.filters import ProductFilters
from retrieval.ranking import RankedProduct, RankRequest

FILTER_SLOTS = ("category", "brand", "colour", "size", "price_min", "price_max")
# The filters an empty search drops first, one at a time, until something is found.
RELAX_ORDER = ("size", "brand", "colour", "price_min", "price_max", "category")
SHOWN_PRODUCTS = MAX_FACT_PRODUCTS  # the reply can speak of exactly the products shown
RECALLED = 20
FIT = 0.8  # products shown are at least this similar to the request, relative to the best
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


class ProductDesk:
    """Finds the products a turn is about; `texts` are the canned replies."""

    def __init__(self, shop: Shop, texts: dict[str, str]) -> None:
        self.shop = shop
        self.texts = texts

    def search(
        self,
        parse: Parse,
        message: str,
        carried: dict[str, Any],
        shopper_id: str | None,
        session_id: str,
    ) -> Found:
        """Search the catalog with the parse's slots on top of those `carried` from the last
        search ("cheaper", "in blue"), ranked for the shopper; in-stock products only."""
        state = merge_slots(carried, parse.slots)
        query = " ".join(
            str(state[name]) for name in ("colour", "material", "query") if state.get(name)
        )
        query = query or str(state.get("category") or message)
        sort = state.get("sort")
        wanted = {name: state.get(name) for name in FILTER_SLOTS}
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
            # Nothing under every filter: drop the least important one still set, and say so.
            loosen = next((name for name in RELAX_ORDER if wanted.get(name) is not None), None)
            if ranked or loosen is None:
                break
            relaxed.append(loosen)
            wanted[loosen] = None
        if ranked:
            # Exploration may lift a product that merely shares a colour with the request, and
            # "cheapest" means the cheapest of what fits: keep what is close to the best match.
            best = max(item.features.get("semantic", 0.0) for item in ranked)
            ranked = [i for i in ranked if i.features.get("semantic", 0.0) >= FIT * best]
        if sort in SORT_KEYS:
            # "cheaper ones" after hiking boots: the cheapest hiking boots, not a sandal that
            # shares the colour; the type most of the best matches have is what is sought.
            kinds = Counter((item.product.attributes or {}).get("type") for item in ranked[:5])
            kind = kinds.most_common(1)[0][0] if kinds else None
            same = [item for item in ranked if (item.product.attributes or {}).get("type") == kind]
            if kind and len(same) >= 2:
                ranked = same
            ranked = sorted(ranked, key=lambda item: SORT_KEYS[sort](item.product))
        return Found("search", ranked[:SHOWN_PRODUCTS], state, relaxed=relaxed)

    def about_shown(
        self,
        parse: Parse,
        message: str,
        session: SessionState,
        shopper_id: str | None,
        session_id: str,
    ) -> Found:
        """The products a details or compare request refers to: by number among those shown
        last ("the second one"; none named: the first, or the first two to compare), or, for
        a product named in the message, the best match of a search."""
        refs = parse.slots.get("product_refs") or []
        if not refs:
            if parse.slots.get("query"):
                found = self.search(parse, message, session.slots, shopper_id, session_id)
                return Found("search", found.products[:1], found.state, detailed=True)
            refs = [1, 2] if parse.intent == "compare_products" else [1]
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
