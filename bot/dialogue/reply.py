"""The structured reply every channel renders: one typed model, the shape `/v1/chat`
returns (and the OpenAPI docs show), `shopbot chat --json` prints, and the stream's final
`reply` event carries.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Reason(BaseModel):
    code: str
    text: str


class ProductCard(BaseModel):
    """A product shown, as a card: its record's fields, its rank score and why it was picked."""

    id: str
    title: str
    price: float | None = None
    currency: str | None = None
    category: str | None = None
    brand: str | None = None
    rating: float | None = None
    review_count: int | None = None
    in_stock: bool | None = None
    image_url: str
    score: float
    reasons: list[Reason] = Field(default_factory=list)


class Citation(BaseModel):
    """A policy section the reply drew on, with the sentence of it closest to the question."""

    id: str
    title: str
    section: str
    quote: str


class ComparisonRow(BaseModel):
    attribute: str
    values: list[str]


class Comparison(BaseModel):
    """Products side by side, computed from their records (never by the LM)."""

    ids: list[str]
    columns: list[str]
    rows: list[ComparisonRow]


class Reply(BaseModel):
    """One turn's answer: the checked text and everything a channel may show beside it."""

    session_id: str = Field(description="Send it back to go on with the conversation.")
    reply: str = Field(description="The reply text; every sentence checked against records.")
    intent: str
    slots: dict[str, Any] = Field(description="The slots in force (never an e-mail address).")
    confidence: float
    route: str = Field(description="search, details, policy, order, handoff, clarify, ...")
    handoff: bool = Field(description="A person has taken (or is taking) the conversation over.")
    products: list[ProductCard] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list, description="Ids of the policy sections.")
    citations: list[Citation] = Field(default_factory=list)
    follow_ups: list[str] = Field(default_factory=list, description="Suggested next messages.")
    comparison: Comparison | None = None
    order: dict[str, Any] | None = Field(None, description="The verified order shown, if any.")
    removed: list[str] = Field(
        default_factory=list, description="Sentences the grounding check dropped."
    )
    timings_ms: dict[str, float | int] = Field(default_factory=dict)
