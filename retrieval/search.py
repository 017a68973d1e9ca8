"""Hybrid product recall: dense vectors plus BM25 keywords, fused by reciprocal rank.

Each system returns up to `candidate_pool` ids under the same filters; the fusion adds
`weight / (rrf_k + rank)` from every list a product appears in. Dense recall understands vague
needs ("something to keep me dry on my commute"); keyword recall pins exact words, brands and
model names; the fusion keeps what either is sure of.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
        return {**self.product.summary(), "score": round(self.score, 6)}


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
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="keyword")

    def close(self) -> None:
        self._pool.shutdown(wait=False)

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
        pool = max(k, self.candidate_pool)
        if not query:
            if filters.is_empty():
                return []
            ids = self.records.filtered_ids(filters, k)
            products = self.records.get_many(ids)
            return [ProductHit(products[i], 0.0) for i in ids if i in products]

        dense: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        pending = None
        if system in ("keyword", "hybrid"):
            # SQLite works while the embedding model runs: the two recalls overlap.
            pending = self._pool.submit(self.records.keyword_search, query, filters, pool)
        if system in ("dense", "hybrid"):
            vector = self.embedder.embed_query(query)
            dense = self.vectors.query(vector, pool, filters)
        if pending is not None:
            keyword = pending.result()

        fused = self._fuse(dense, keyword, system)[:k]
        products = self.records.get_many([pid for pid, _ in fused])
        # A vector whose record was removed by an interrupted ingest has no product: skip it.
        return [ProductHit(products[pid], **evidence) for pid, evidence in fused if pid in products]

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
