"""The product record and its validation.

A `Product` is one catalog row as the store keeps it. Well-known fields are typed; anything
else a catalog carries lands in `attributes` as strings. Colour and size live in
`attributes["colour"]` and `attributes["size"]`; either may list several values separated by
commas ("S, M, L").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 10_000
MAX_ATTRIBUTE_CHARS = 1_000
MAX_REVIEW_COUNT = 2**63 - 1  # a 64-bit integer: larger ones overflow the scorer's float math

KNOWN_FIELDS = (
    "id",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "rating",
    "review_count",
    "in_stock",
    "image_url",
    "attributes",
)

# Spellings operators use for the attributes the filters know about.
ATTRIBUTE_ALIASES = {
    "color": "colour",
    "colors": "colour",
    "colours": "colour",
    "sizes": "size",
    "materials": "material",
}

_TRUE = {"true", "yes", "y", "1", "in stock", "in_stock", "available"}
_FALSE = {"false", "no", "n", "0", "out of stock", "out_of_stock", "unavailable", "sold out"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _is_finite(value: int | float) -> bool:
    """False for inf, -inf and nan, and for integers too large to become a float (JSON allows
    `1e999`, which Python reads as inf, and 400-digit integers)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _shown(value: int | float) -> str:
    return repr(value) if isinstance(value, float) else "an integer too large for a float"


def split_values(value: str | None) -> list[str]:
    """Split a multi-valued attribute: "Red, navy blue" -> ["red", "navy blue"]."""
    if not value:
        return []
    return [v.strip().lower() for v in re.split(r"[,;|/]", value) if v.strip()]


class Product(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: str = ""
    category: str | None = None
    brand: str | None = None
    price: float | None = Field(default=None, ge=0)
    currency: str = "USD"
    rating: float | None = Field(default=None, ge=0, le=5)
    review_count: int | None = Field(default=None, ge=0, le=MAX_REVIEW_COUNT)
    in_stock: bool = True
    image_url: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("id", "title", "category", "brand", "currency", "image_url", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = _CONTROL.sub("", value).strip()
        return value

    @field_validator("category", "brand", "image_url", mode="after")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("currency", mode="after")
    @classmethod
    def _currency(cls, value: str) -> str:
        return (value or "USD").upper()

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> Any:
        return "" if value is None else _CONTROL.sub("", str(value))

    @field_validator("price", "rating", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, str):
            cleaned = value.strip().lstrip("$€£").replace(",", "")
            try:
                value = float(cleaned)
            except ValueError:
                raise ValueError(f"expected a number, got {value.strip()[:40]!r}") from None
        if isinstance(value, (int, float)) and not _is_finite(value):
            raise ValueError(f"expected a finite number, got {_shown(value)}")
        return value

    @field_validator("review_count", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            try:
                value = float(value.strip().replace(",", ""))
            except ValueError:
                raise ValueError(f"expected a whole number, got {value.strip()[:40]!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite whole number, got {value!r}")
            return int(value)
        if isinstance(value, (int, float)) and not _is_finite(value):
            raise ValueError(f"expected a finite whole number, got {_shown(value)}")
        return value

    @field_validator("in_stock", mode="before")
    @classmethod
    def _stock(cls, value: Any) -> Any:
        if value is None or value == "":
            return True
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {value.strip()[:40]!r}")
        return value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):  # a 5,000-digit number, or nested too deep
                raise ValueError("attributes must be a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError(f"attributes must be an object, got {type(value).__name__}")
        clean: dict[str, str] = {}
        for key, item in value.items():
            if item is None or item == "":
                continue
            name = ATTRIBUTE_ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
            if isinstance(item, list):
                item = ", ".join(str(v) for v in item)
            clean[name] = _CONTROL.sub("", str(item)).strip()[:MAX_ATTRIBUTE_CHARS]
        return clean

    @property
    def colours(self) -> list[str]:
        return split_values(self.attributes.get("colour"))

    @property
    def sizes(self) -> list[str]:
        return split_values(self.attributes.get("size"))

    def summary(self) -> dict[str, Any]:
        """The fields a product card shows."""
        return {
            "id": self.id,
            "title": self.title,
            "price": self.price,
            "currency": self.currency,
            "category": self.category,
            "brand": self.brand,
            "rating": self.rating,
            "in_stock": self.in_stock,
            "image_url": self.image_url,
        }

    def content_hash(self) -> str:
        """Hash of everything stored; an unchanged hash means re-ingest can skip the row."""
        payload = json.dumps(self.model_dump(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

    def embedding_text(self) -> str:
        """The text embedded for this product (sizes are left to filters and keywords)."""
        parts = [self.title]
        for value in (self.brand, self.category):
            if value and value.lower() not in self.title.lower():
                parts.append(value)
        for key in ("colour", "material"):
            if key in self.attributes:
                parts.append(f"{key}: {self.attributes[key]}")
        if self.description:
            parts.append(self.description)
        return ". ".join(parts)


def product_from_row(row: dict[str, Any]) -> tuple[Product, list[str]]:
    """Validate one raw row (from CSV or JSONL) into a Product.

    Unknown fields become attributes; an over-long description is cut to
    MAX_DESCRIPTION_CHARS and reported as a warning. Raises pydantic.ValidationError.
    """
    warnings: list[str] = []
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            continue
        name = str(key).strip()
        if name.lower() in KNOWN_FIELDS:
            fields[name.lower()] = value
        elif value not in (None, ""):
            extra[name] = value
    attributes = fields.get("attributes")
    if extra:
        merged = dict(extra)
        if isinstance(attributes, dict):
            merged.update(attributes)
        elif isinstance(attributes, str) and attributes.strip():
            try:
                parsed = json.loads(attributes)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                merged.update(parsed)
            else:
                merged = attributes  # let the validator report it
        fields["attributes"] = merged
    description = fields.get("description")
    if isinstance(description, str) and len(description) > MAX_DESCRIPTION_CHARS:
        warnings.append(
            f"description is {len(description):,} characters; kept the first "
            f"{MAX_DESCRIPTION_CHARS:,}"
        )
        fields["description"] = description[:MAX_DESCRIPTION_CHARS]
    return Product.model_validate(fields), warnings
