"""Store policy sections (shipping, returns, ...) in their own Chroma collection.

A policy folder is the whole truth: ingesting it adds new sections, re-embeds changed ones,
skips unchanged ones and removes sections that are gone. Customer-service answers quote the
section they come from, so every hit keeps its document and section names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from retrieval.embeddings import Embedder
from retrieval.policies import PolicyDoc


@dataclass
class PolicyHit:
    doc: PolicyDoc
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.doc.id,
            "title": self.doc.title,
            "section": self.doc.section,
            "text": self.doc.text,
            "score": round(self.score, 6),
        }


def _digest(doc: PolicyDoc) -> str:
    return hashlib.sha256(doc.content().encode("utf-8")).hexdigest()[:32]


class PolicyIndex:
    def __init__(self, client: Any, embedder: Embedder, name: str = "policies") -> None:
        self.embedder = embedder
        self.name = name
        self._collection = client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def count(self) -> int:
        return self._collection.count()

    def ingest(self, docs: list[PolicyDoc]) -> dict[str, int]:
        """Make the collection hold exactly `docs`; returns added/updated/unchanged/removed."""
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"policy sections must have unique ids, but {repeated} repeat")
        existing = self._collection.get(include=["metadatas"])
        known = {
            pid: (meta or {}).get("hash")
            for pid, meta in zip(existing["ids"], existing["metadatas"], strict=True)
        }
        changed = [d for d in docs if known.get(d.id) != _digest(d)]
        gone = [pid for pid in known if pid not in set(ids)]
        if changed:
            vectors = self.embedder.embed_documents([d.content() for d in changed])
            self._collection.upsert(
                ids=[d.id for d in changed],
                embeddings=vectors,
                documents=[d.text for d in changed],
                metadatas=[
                    {"doc": d.doc, "title": d.title, "section": d.section, "hash": _digest(d)}
                    for d in changed
                ],
            )
        if gone:
            self._collection.delete(ids=gone)
        added = sum(1 for d in changed if d.id not in known)
        return {
            "added": added,
            "updated": len(changed) - added,
            "unchanged": len(docs) - len(changed),
            "removed": len(gone),
        }

    def search(self, query: str, k: int = 3) -> list[PolicyHit]:
        """The `k` policy sections closest to `query`, best first."""
        if not query.strip() or self.count() == 0:
            return []
        result = self._collection.query(
            query_embeddings=[self.embedder.embed_query(query)],
            n_results=min(k, self.count()),
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for pid, text, meta, distance in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        ):
            doc = PolicyDoc(
                id=pid, doc=meta["doc"], title=meta["title"], section=meta["section"], text=text
            )
            hits.append(PolicyHit(doc, 1.0 - float(distance)))
        return hits
