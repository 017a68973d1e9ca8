"""Slot filters for product recall, rendered for both stores.

The same `ProductFilters` becomes a Chroma `where` clause (so the vector store filters inside
its query) and an SQL condition for the keyword index. Text values compare case-insensitively;
list values mean "any of".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from retrieval.catalog import Product


def slot_values(value: str | list[str] | None) -> list[str]:
    """A slot's values as compared: lower-cased, trimmed, unique; one string or a list."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return sorted({v.strip().lower() for v in values if v and v.strip()})


def check_finite(name: str, value: float | None) -> None:
    """Refuse `inf`, `-inf` and `nan` (and integers too large for a float) as a filter bound.

    Chroma rejects such a `where` clause mid-search ("Invalid where clause") and SQLite binds
    NaN as NULL, so the two recall systems would fail or disagree; the request is refused
    up front instead, naming the value.
    """
    if value is None:
        return
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    except TypeError:
        raise ValueError(f"{name} must be a number, but got {value!r}") from None
    if not finite:
        shown = value if isinstance(value, float) else "an integer too large for a float"
        raise ValueError(f"{name} must be a finite number, but got {shown}")


@dataclass(frozen=True)
class ProductFilters:
    price_min: float | None = None
    price_max: float | None = None
    category: list[str] = field(default_factory=list)
    brand: list[str] = field(default_factory=list)
    colour: list[str] = field(default_factory=list)
    size: list[str] = field(default_factory=list)
    in_stock: bool | None = None
    rating_min: float | None = None

    def __post_init__(self) -> None:
        for name in ("category", "brand", "colour", "size"):
            object.__setattr__(self, name, slot_values(getattr(self, name)))
        for name in ("price_min", "price_max", "rating_min"):
            check_finite(name, getattr(self, name))
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise ValueError(
                f"price_min must be <= price_max, but got {self.price_min} > {self.price_max}"
            )

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, []) for f in fields(self))

    def to_chroma_where(self) -> dict[str, Any] | None:
        """The Chroma `where` clause, or None when nothing is filtered."""
        clauses: list[dict[str, Any]] = []
        if self.price_min is not None:
            clauses.append({"price": {"$gte": float(self.price_min)}})
        if self.price_max is not None:
            clauses.append({"price": {"$lte": float(self.price_max)}})
        if self.rating_min is not None:
            clauses.append({"rating": {"$gte": float(self.rating_min)}})
        if self.in_stock is not None:
            clauses.append({"in_stock": {"$eq": self.in_stock}})
        for name, key in (("category", "category_key"), ("brand", "brand_key")):
            values = getattr(self, name)
            if values:
                clauses.append({key: {"$in": values}})
        for name in ("colour", "size"):
            values = getattr(self, name)
            if values:
                anyof = [{f"{name}s": {"$contains": v}} for v in values]
                clauses.append(anyof[0] if len(anyof) == 1 else {"$or": anyof})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def to_sql(self, table: str = "p", dialect: str = "sqlite") -> tuple[str, list[Any]]:
        """An SQL condition over the records table and its parameters ("1 = 1" when empty),
        for SQLite or (`dialect` "postgresql") PostgreSQL."""
        find = "strpos" if dialect == "postgresql" else "instr"
        parts: list[str] = []
        params: list[Any] = []
        if self.price_min is not None:
            parts.append(f"{table}.price >= ?")
            params.append(float(self.price_min))
        if self.price_max is not None:
            parts.append(f"{table}.price <= ?")
            params.append(float(self.price_max))
        if self.rating_min is not None:
            parts.append(f"{table}.rating >= ?")
            params.append(float(self.rating_min))
        if self.in_stock is not None:
            parts.append(f"{table}.in_stock = ?")
            params.append(int(self.in_stock))
        for name in ("category", "brand"):
            values = getattr(self, name)
            if values:
                parts.append(f"{table}.{name}_key IN ({','.join('?' * len(values))})")
                params.extend(values)
        for name in ("colour", "size"):
            values = getattr(self, name)
            if values:
                parts.append(
                    "(" + " OR ".join(f"{find}({table}.{name}s, ?) > 0" for _ in values) + ")"
                )
                params.extend(f"|{v}|" for v in values)
        return (" AND ".join(parts) or "1 = 1"), params


def chroma_metadata(product: Product) -> dict[str, Any]:
    """Metadata stored beside each vector: exactly the fields the filters use."""
    meta: dict[str, Any] = {"in_stock": product.in_stock}
    if product.price is not None:
        meta["price"] = float(product.price)
    if product.rating is not None:
        meta["rating"] = float(product.rating)
    if product.category:
        meta["category_key"] = product.category.lower()
    if product.brand:
        meta["brand_key"] = product.brand.lower()
    if product.colours:
        meta["colours"] = product.colours
    if product.sizes:
        meta["sizes"] = product.sizes
    return meta


def packed_values(values: list[str]) -> str:
    """Multi-values stored in SQL as "|red|navy|" so instr() (strpos()) matches whole values."""
    return "|" + "|".join(values) + "|" if values else ""
