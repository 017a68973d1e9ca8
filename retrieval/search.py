"""Hybrid product recall: dense vectors plus BM25 keywords, fused by reciprocal rank.

Each system returns up to `candidate_pool` ids under the same filters; the fusion adds
`weight / (rrf_k + rank)` from every list a product appears in. Dense recall understands vague
needs ("something to keep me dry on my commute"); keyword recall pins exact words, brands and
model names; the fusion keeps what either is sure of.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from retrieval.catalog import Product
from retrieval.embeddings import Embedder
from retrieval.filters import ProductFilters
from retrieval.records import ProductRecords
from retrieval.store import VectorIndex

System = Literal["keyword", "dense", "hybrid"]
SYSTEMS: tuple[System, ...] = ("keyword", "dense", "hybrid")


@dataclass
class ProductHit:
    """One recalled product with the evidence for it."""

    product: Product
    score: float
    dense_score: float | None = None
    keyword_score: float | None = None
    dense_rank: int | None = None
    keyword_rank: int | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.product.id,
            "title": self.product.title,
            "price": self.product.price,
            "currency": self.product.currency,
            "score": round(self.score, 6),
            "category": self.product.category,
            "brand": self.product.brand,
            "rating": self.product.rating,
            "in_stock": self.product.in_stock,
            "image_url": self.product.image_url,
        }


@dataclass
class SearchTimings:
    """Milliseconds spent in each stage of the last search (for benchmarks and logs)."""

    stages: dict[str, float] = field(default_factory=dict)


class ProductSearch:
    """Recall products for a text request under slot filters."""

    def __init__(
        self,
        records: ProductRecords,
        vectors: VectorIndex,
        embedder: Embedder,
        *,
        candidate_pool: int = 100,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        keyword_weight: float = 1.0,
    ) -> None:
        if candidate_pool < 1:
            raise ValueError(f"candidate_pool must be > 0, but got {candidate_pool}")
        self.records = records
        self.vectors = vectors
        self.embedder = embedder
        self.candidate_pool = candidate_pool
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.keyword_weight = keyword_weight
        self.timings = SearchTimings()

    def recall(
        self,
        query: str,
        k: int = 10,
        filters: ProductFilters | None = None,
        system: System = "hybrid",
    ) -> list[ProductHit]:
        """The best `k` products for `query` by `system`, all passing `filters`.

        A blank query with filters lists the filtered products, best rated first.
        """
        if system not in SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SYSTEMS)}, but got {system!r}")
        if k < 1:
            raise ValueError(f"k must be > 0, but got {k}")
        filters = filters or ProductFilters()
        query = (query or "").strip()
        self.timings = SearchTimings()
        pool = max(k, self.candidate_pool)
        if not query:
            if filters.is_empty():
                return []
            ids = self.records.filtered_ids(filters, k)
            products = self.records.get_many(ids)
            return [ProductHit(products[i], 0.0) for i in ids if i in products]

        dense: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        if system in ("dense", "hybrid"):
            started = time.perf_counter()
            vector = self.embedder.embed_query(query)
            self._lap("embed", started)
            started = time.perf_counter()
            dense = self.vectors.query(vector, pool, filters)
            self._lap("dense", started)
        if system in ("keyword", "hybrid"):
            started = time.perf_counter()
            keyword = self.records.keyword_search(query, filters, pool)
            self._lap("keyword", started)

        started = time.perf_counter()
        fused = self._fuse(dense, keyword, system)[:k]
        products = self.records.get_many([pid for pid, _ in fused])
        # A vector whose record was removed by an interrupted ingest has no product: skip it.
        result = [
            ProductHit(products[pid], **evidence) for pid, evidence in fused if pid in products
        ]
        self._lap("fuse", started)
        return result

    def _lap(self, stage: str, started: float) -> None:
        self.timings.stages[stage] = (time.perf_counter() - started) * 1000

    def _fuse(
        self,
        dense: list[tuple[str, float]],
        keyword: list[tuple[str, float]],
        system: System,
    ) -> list[tuple[str, dict]]:
        """(id, evidence) pairs, best first; evidence holds the ProductHit fields."""
        evidence: dict[str, dict] = {}
        for rank, (pid, score) in enumerate(dense, start=1):
            evidence.setdefault(pid, {}).update(dense_rank=rank, dense_score=score)
        for rank, (pid, score) in enumerate(keyword, start=1):
            evidence.setdefault(pid, {}).update(keyword_rank=rank, keyword_score=score)
        for item in evidence.values():
            if system == "dense":
                item["score"] = item["dense_score"]
            elif system == "keyword":
                item["score"] = item["keyword_score"]
            else:
                item["score"] = sum(
                    weight / (self.rrf_k + item[rank])
                    for weight, rank in (
                        (self.dense_weight, "dense_rank"),
                        (self.keyword_weight, "keyword_rank"),
                    )
                    if rank in item
                )
        return sorted(evidence.items(), key=lambda pair: pair[1]["score"], reverse=True)
