"""Product vectors in Chroma.

Embedded (`PersistentClient` under the data dir) by default; a Chroma server
(`chroma run --path DIR --port N`) when `chroma_url` is set. Vectors are computed by
`retrieval.embeddings`, never by Chroma, and each carries the filter fields as metadata so
filters run inside the Chroma query.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.catalog import Product
from retrieval.errors import StoreUnavailable
from retrieval.filters import ProductFilters, chroma_metadata


def chroma_client(data_dir: Path, chroma_url: str | None = None) -> Any:
    """A Chroma client: a server at `chroma_url` ("host:port"), else embedded in data_dir."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    options = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        host, _, port = chroma_url.rpartition(":")
        try:
            client = chromadb.HttpClient(host=host, port=int(port), settings=options)
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001 - connection errors vary by transport
            raise StoreUnavailable(
                f"cannot reach the Chroma server at {chroma_url}: {exc}"
            ) from exc
        return client
    path = (data_dir / "chroma").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=options)


class VectorIndex:
    """One Chroma collection of product vectors with filter metadata."""

    def __init__(self, client: Any, name: str = "products") -> None:
        self.client = client
        self.name = name
        self._collection = client.get_or_create_collection(
            name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine", "ef_search": 200}},
        )

    def count(self) -> int:
        return self._collection.count()

    def upsert(self, products: Sequence[Product], vectors: np.ndarray) -> None:
        if not products:
            return
        self._collection.upsert(
            ids=[p.id for p in products],
            embeddings=vectors,
            metadatas=[chroma_metadata(p) for p in products],
        )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._collection.delete(ids=list(ids))

    def ids(self) -> list[str]:
        return list(self._collection.get(include=[])["ids"])

    def query(
        self, vector: np.ndarray, k: int = 100, filters: ProductFilters | None = None
    ) -> list[tuple[str, float]]:
        """Ids and cosine similarity of the `k` nearest products passing `filters`."""
        if k < 1:
            return []
        where = filters.to_chroma_where() if filters else None
        result = self._collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=where,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(pid, 1.0 - float(d)) for pid, d in zip(ids, distances, strict=True)]

    def drop(self) -> None:
        self.client.delete_collection(self.name)
