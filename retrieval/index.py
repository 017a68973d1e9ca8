"""The store's knowledge as one object: product records, keyword index, vectors, search,
and the policy sections for customer-service answers.

    from bot.settings import load_settings
    from retrieval.index import CatalogIndex

    catalog = CatalogIndex.open(load_settings())
    report = catalog.ingest("products.csv")     # added / updated / unchanged / rejected rows
    hits = catalog.search("waterproof boots", k=5, filters=ProductFilters(price_max=150))

Writes go to Chroma first and the records (SQLite, or PostgreSQL with a `database_url`)
second, a batch at a time. The records are what is committed: a product whose vector landed but
whose row did not is simply written again by the next ingest, and a marker file tells that next
ingest to reconcile the two stores.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from retrieval.catalog import Product
from retrieval.embeddings import Embedder, EmbeddingCache
from retrieval.filters import ProductFilters
from retrieval.ingest import CatalogReader, IngestReport
from retrieval.policy_index import PolicyIndex
from retrieval.profile import ShopperProfile
from retrieval.ranking import Candidate, RankedProduct, RankRequest, Scorer
from retrieval.records import ProductRecords
from retrieval.search import ProductHit, ProductSearch, System
from retrieval.store import VectorIndex, chroma_client

if TYPE_CHECKING:
    from retrieval.config import CatalogSettings


class CatalogIndex:
    def __init__(
        self,
        records: ProductRecords,
        vectors: VectorIndex,
        embedder: Embedder,
        *,
        state_dir: Path,
        policies: PolicyIndex | None = None,
        scorer: Scorer | None = None,
        batch_size: int = 256,
        candidate_pool: int = 100,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        keyword_weight: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, but got {batch_size}")
        self.records = records
        self.vectors = vectors
        self.embedder = embedder
        self.policies = policies
        self.scorer = scorer or Scorer()
        self.batch_size = batch_size
        self._marker = state_dir / f"ingest-in-progress.{vectors.name}"
        self.searcher = ProductSearch(
            records,
            vectors,
            embedder,
            candidate_pool=candidate_pool,
            rrf_k=rrf_k,
            dense_weight=dense_weight,
            keyword_weight=keyword_weight,
        )

    @classmethod
    def open(
        cls,
        settings: CatalogSettings,
        *,
        embedder: Embedder | None = None,
        client: object | None = None,
    ) -> CatalogIndex:
        """The catalog under `settings.data_dir` (and `settings.chroma_url` if set); its
        records in `settings.database_url` when set, shared by every worker naming it."""
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        embedder = embedder or open_embedder(settings)
        client = client or chroma_client(data_dir, settings.chroma_url)
        return cls(
            ProductRecords(
                settings.database_url or data_dir / f"{settings.collection}.sqlite",
                collection=settings.collection,
            ),
            VectorIndex(client, settings.collection),
            embedder,
            state_dir=data_dir,
            policies=PolicyIndex(client, embedder, settings.policy_collection),
            scorer=Scorer(exploration=settings.exploration),
            batch_size=settings.ingest_batch_size,
            candidate_pool=settings.candidate_pool,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            keyword_weight=settings.keyword_weight,
        )

    def count(self) -> int:
        return self.records.count()

    @property
    def ingest_interrupted(self) -> bool:
        """True when the last write stopped part-way (the next ingest completes it)."""
        return self._marker.exists()

    def close(self) -> None:
        self.searcher.close()
        self.records.close()

    # -- writing -------------------------------------------------------------------------

    def ingest(
        self, path: Path | str, *, replace: bool = False, progress: bool = False
    ) -> IngestReport:
        """Load a CSV or JSONL catalog file: add new products, update changed ones.

        Unchanged rows (same content hash) are skipped. With `replace`, products that are
        not in the file any more are removed (rows that were rejected still count as present).
        Raises CatalogFileError when the file cannot be read at all.
        """
        reader = CatalogReader(path)
        report = IngestReport(source=str(path))
        started = time.perf_counter()
        self._begin()
        bar = _progress_bar(reader.size, progress, Path(path).name)
        try:
            self._write_stream(
                (row.product for row in reader.rows()),
                report,
                after_batch=lambda: bar.update(reader.counter.bytes_read - bar.n),
            )
        finally:
            bar.close()
        report.rejected = reader.rejected
        report.warnings = reader.warnings
        if replace:
            gone = [pid for pid in self.records.ids() if pid not in reader.seen_ids]
            report.removed = self._delete(gone)
        self._finish(report, started)
        return report

    def ingest_products(self, products: Iterable[Product], *, source: str = "api") -> IngestReport:
        """Add or update already-validated products (the Python API behind the file loader)."""
        report = IngestReport(source=source)
        started = time.perf_counter()
        self._begin()
        self._write_stream(products, report)
        self._finish(report, started)
        return report

    def _write_stream(
        self,
        products: Iterable[Product],
        report: IngestReport,
        after_batch: Callable[[], object] = lambda: None,
    ) -> None:
        batch: list[Product] = []
        for product in products:
            batch.append(product)
            if len(batch) >= self.batch_size:
                self._write_batch(batch, report)
                batch = []
                after_batch()
        self._write_batch(batch, report)
        after_batch()

    def remove(self, ids: Sequence[str]) -> int:
        """Delete products by id from both stores; returns how many were in the catalog."""
        self._begin()
        removed = self._delete(ids)
        self._marker.unlink(missing_ok=True)
        return removed

    def _delete(self, ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), 5000):
            self.vectors.delete(ids[start : start + 5000])
        return self.records.delete(ids) if ids else 0

    def _begin(self) -> None:
        """Mark a write as in progress; reconcile first if the previous one never finished."""
        if self._marker.exists():
            self.reconcile()
        self._marker.parent.mkdir(parents=True, exist_ok=True)
        self._marker.write_text(str(time.time()))

    def _finish(self, report: IngestReport, started: float) -> None:
        self._marker.unlink(missing_ok=True)
        report.seconds = time.perf_counter() - started

    def _write_batch(self, batch: list[Product], report: IngestReport) -> None:
        if not batch:
            return
        known = self.records.hashes([p.id for p in batch])
        digests = [p.content_hash() for p in batch]
        changed = [(p, d) for p, d in zip(batch, digests, strict=True) if known.get(p.id) != d]
        report.unchanged += len(batch) - len(changed)
        if not changed:
            return
        products = [p for p, _ in changed]
        vectors = self.embedder.embed_documents([p.embedding_text() for p in products])
        self.vectors.upsert(products, vectors)
        self.records.upsert(products, [d for _, d in changed])
        for product in products:
            if product.id in known:
                report.updated += 1
            else:
                report.added += 1

    def reconcile(self) -> dict[str, int]:
        """Make the vector store hold exactly the committed records (after a crash)."""
        record_ids = set(self.records.ids())
        vector_ids = set(self.vectors.ids())
        orphans = sorted(vector_ids - record_ids)
        missing = sorted(record_ids - vector_ids)
        for start in range(0, len(orphans), 5000):
            self.vectors.delete(orphans[start : start + 5000])
        for start in range(0, len(missing), self.batch_size):
            chunk = list(self.records.get_many(missing[start : start + self.batch_size]).values())
            self.vectors.upsert(
                chunk, self.embedder.embed_documents([p.embedding_text() for p in chunk])
            )
        return {"orphan_vectors_removed": len(orphans), "vectors_restored": len(missing)}

    # -- reading -------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        filters: ProductFilters | None = None,
        system: System | Literal["ranked"] = "hybrid",
    ) -> list[ProductHit]:
        """Products for `query`: one recall system, or "ranked" (hybrid recall, then the scorer
        with no shopper history and no exploration, so the order is repeatable)."""
        if system != "ranked":
            return self.searcher.recall(query, k=k, filters=filters, system=system)
        hits = self._candidates(query, k, filters)
        evidence = {hit.product.id: hit for hit in hits}
        return [
            dataclasses.replace(evidence[r.product.id], product=r.product, score=r.score)
            for r in self._rank(hits, k=k, explore=False)
        ]

    def recommend(
        self,
        query: str,
        k: int = 10,
        filters: ProductFilters | None = None,
        request: RankRequest | None = None,
        profile: ShopperProfile | None = None,
        *,
        explore: bool = True,
        exploration: float | None = None,
    ) -> list[RankedProduct]:
        """Recall candidates for `query` under `filters`, then rank them for this shopper
        (exploring with strength `exploration`, default the scorer's)."""
        hits = self._candidates(query, k, filters)
        return self._rank(hits, request, profile, k=k, explore=explore, exploration=exploration)

    def _candidates(self, query: str, k: int, filters: ProductFilters | None) -> list[ProductHit]:
        pool = max(k, self.searcher.candidate_pool)
        return self.searcher.recall(query, k=pool, filters=filters)

    def _rank(
        self,
        hits: list[ProductHit],
        request: RankRequest | None = None,
        profile: ShopperProfile | None = None,
        *,
        k: int,
        explore: bool,
        exploration: float | None = None,
    ) -> list[RankedProduct]:
        added = self.records.added_at([h.product.id for h in hits])
        candidates = [
            Candidate(
                h.product,
                relevance=h.score,
                semantic=h.dense_score,
                keyword=h.keyword_score,
                added_at=added.get(h.product.id),
            )
            for h in hits
        ]
        return self.scorer.rank(
            candidates, request, profile, k=k, explore=explore, exploration=exploration
        )


def open_embedder(settings: CatalogSettings) -> Embedder:
    """The configured embedding model, with its vector cache and ONNX copy in the data dir."""
    data_dir = Path(settings.data_dir)
    return Embedder(
        settings.embedding_model,
        device=settings.resolved_device,
        batch_size=settings.embedding_batch_size,
        cache=EmbeddingCache(data_dir / "embeddings.sqlite"),
        onnx_dir=data_dir / "models" / "onnx",
    )


def _progress_bar(total_bytes: int, enabled: bool, name: str):
    from tqdm import tqdm

    return tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc=f"ingest {name}",
        disable=not enabled,
        leave=False,
    )
