"""Store policy sections (shipping, returns, ...) in their own Chroma collection.

A policy folder is the whole truth: ingesting it adds new sections, re-embeds changed ones,
skips unchanged ones and removes sections that are gone. Customer-service answers quote the
section they come from, so every hit keeps its document and section names.

The questions a section lists (`PolicyDoc.questions`) live in a second collection, one
vector each: a message is as close to a section as to the section's text or to the nearest
of its questions, whichever is closer, so "can i send my aunt's present back without her
knowing" finds the demo store's "Gift returns" through "will my aunt find out i returned her
gift", though the section's own words are "gift receipt" and "the buyer is not notified".
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
    score: float  # the closer of its text and its nearest question (cosine): the rank
    by_text: float = 0.0  # its text alone (0 when it was found through a question only)
    asked: float = 0.0  # the nearest of its questions alone (0 when none came near)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.doc.id,
            "title": self.doc.title,
            "section": self.doc.section,
            "text": self.doc.text,
            "score": round(self.score, 6),
        }


QUESTIONS_PER_HIT = 4  # question vectors fetched per section wanted


def _digest(doc: PolicyDoc) -> str:
    content = doc.content() + "".join(f"\n? {question}" for question in doc.questions)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


class PolicyIndex:
    def __init__(self, client: Any, embedder: Embedder, name: str = "policies") -> None:
        self.embedder = embedder
        self.name = name
        self._collection = client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        self._questions = client.get_or_create_collection(
            f"{name}-questions",
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
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
            self._questions.delete(where={"section": {"$in": [d.id for d in changed]}})
            asked = [(d.id, n, question) for d in changed for n, question in enumerate(d.questions)]
            if asked:
                self._questions.upsert(
                    ids=[f"{pid}?{n}" for pid, n, _ in asked],
                    embeddings=self.embedder.embed_documents([q for _, _, q in asked]),
                    documents=[q for _, _, q in asked],
                    metadatas=[{"section": pid} for pid, _, _ in asked],
                )
        if gone:
            self._collection.delete(ids=gone)
            self._questions.delete(where={"section": {"$in": gone}})
        added = sum(1 for d in changed if d.id not in known)
        return {
            "added": added,
            "updated": len(changed) - added,
            "unchanged": len(docs) - len(changed),
            "removed": len(gone),
        }

    def search(self, query: str, k: int = 3) -> list[PolicyHit]:
        """The `k` policy sections closest to `query` (by their text or their questions),
        best first; the one closest by its text is always among them."""
        count = self.count()
        if not query.strip() or count == 0:
            return []
        vector = self.embedder.embed_query(query)
        by_text = self._collection.query(
            query_embeddings=[vector], n_results=min(k, count), include=["distances"]
        )
        closeness = {
            pid: 1.0 - float(distance)
            for pid, distance in zip(by_text["ids"][0], by_text["distances"][0], strict=True)
        }
        asked: dict[str, float] = {}
        questions = self._questions.count()
        if questions:
            by_question = self._questions.query(
                query_embeddings=[vector],
                n_results=min(k * QUESTIONS_PER_HIT, questions),
                include=["metadatas", "distances"],
            )
            for meta, distance in zip(
                by_question["metadatas"][0], by_question["distances"][0], strict=True
            ):
                pid = meta["section"]
                asked[pid] = max(asked.get(pid, 0.0), 1.0 - float(distance))
        scores = {
            pid: max(closeness.get(pid, 0.0), asked.get(pid, 0.0)) for pid in closeness | asked
        }
        best = sorted(scores, key=lambda pid: -scores[pid])[:k]
        closest_text = max(closeness, key=lambda pid: closeness[pid])
        if closest_text not in best:  # its closeness decides whether the policies answer
            best[-1] = closest_text
        found = self._collection.get(ids=best, include=["documents", "metadatas"])
        docs = {
            pid: PolicyDoc(
                id=pid, doc=meta["doc"], title=meta["title"], section=meta["section"], text=text
            )
            for pid, text, meta in zip(
                found["ids"], found["documents"], found["metadatas"], strict=True
            )
        }
        return [
            PolicyHit(docs[pid], scores[pid], closeness.get(pid, 0.0), asked.get(pid, 0.0))
            for pid in best
            if pid in docs
        ]
