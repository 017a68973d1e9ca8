"""Offline retrieval evaluation: nDCG, recall and MRR for several systems in one run.

Judgements follow TREC qrels: grades 0, 1, 2; products a query has no judgement for are
unknown and count as not relevant. Gains are 2^grade - 1. Queries without any relevant
judgement are skipped (they cannot be scored) and counted in `skipped_queries`.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import CatalogFileError

if TYPE_CHECKING:
    from retrieval.config import CatalogSettings
    from retrieval.embeddings import Embedder
    from retrieval.index import CatalogIndex

Qrels = dict[str, dict[str, int]]


def load_queries(path: Path) -> list[dict[str, str]]:
    queries = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries.append({"id": str(row["id"]), "text": str(row["text"])})
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CatalogFileError(
                    f"{path}: line {number} is not a query with 'id' and 'text' ({exc})"
                ) from None
    return queries


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = [h.strip() for h in next(reader, [])]
        if header[:3] != ["query_id", "product_id", "grade"]:
            raise CatalogFileError(
                f"{path}: expected the header 'query_id<TAB>product_id<TAB>grade', got {header}"
            )
        for number, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                qid, pid, grade = row[0].strip(), row[1].strip(), int(row[2])
            except (IndexError, ValueError):
                raise CatalogFileError(
                    f"{path}: line {number} is not 'query product grade'"
                ) from None
            qrels.setdefault(qid, {})[pid] = grade
    return qrels


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    gains = [2 ** judged.get(pid, 0) - 1 for pid in ranked[:k]]
    ideal = sorted((2**g - 1 for g in judged.values()), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def recall_at(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    relevant = {pid for pid, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    for position, pid in enumerate(ranked[:k], start=1):
        if judged.get(pid, 0) > 0:
            return 1.0 / position
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def score_system(
    catalog: CatalogIndex, queries: list[dict[str, str]], qrels: Qrels, system: str, k: int
) -> dict[str, float]:
    depth = max(k, 100)
    totals = {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0, "recall@100": 0.0, f"mrr@{k}": 0.0}
    latencies = []
    for query in queries:
        judged = qrels[query["id"]]
        started = time.perf_counter()
        hits = catalog.search(query["text"], k=depth, system=system)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = [hit.product.id for hit in hits]
        totals[f"ndcg@{k}"] += ndcg_at(ranked, judged, k)
        totals[f"recall@{k}"] += recall_at(ranked, judged, k)
        totals["recall@100"] += recall_at(ranked, judged, 100)
        totals[f"mrr@{k}"] += mrr_at(ranked, judged, k)
    n = max(len(queries), 1)
    result = {name: round(value / n, 4) for name, value in totals.items()}
    result["latency_ms_p50"] = round(percentile(latencies, 50), 2)
    result["latency_ms_p95"] = round(percentile(latencies, 95), 2)
    return result


def evaluate_retrieval(
    settings: CatalogSettings,
    catalog_path: Path,
    queries_path: Path,
    qrels_path: Path,
    *,
    systems: Sequence[str] = ("keyword", "dense", "hybrid"),
    k: int = 10,
    embedder: Embedder | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Ingest `catalog_path` into a fresh temporary store and score every system on it.

    The embedding cache of `settings.data_dir` is reused, so evaluating the same catalog
    twice embeds it once.
    """
    from retrieval.index import CatalogIndex, open_embedder
    from retrieval.search import SYSTEMS

    unknown = [s for s in systems if s not in (*SYSTEMS, "ranked")]
    if unknown:
        raise ValueError(
            f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}, ranked"
        )
    queries = load_queries(queries_path)
    qrels = load_qrels(qrels_path)
    judged_queries = [q for q in queries if any(g > 0 for g in qrels.get(q["id"], {}).values())]
    embedder = embedder or open_embedder(settings)
    with tempfile.TemporaryDirectory(prefix="shopbot-eval-") as tmp:
        temp_settings = settings.model_copy(
            update={"data_dir": Path(tmp), "chroma_url": None, "database_url": None}
        )
        catalog = CatalogIndex.open(temp_settings, embedder=embedder)
        try:
            report = catalog.ingest(catalog_path, progress=progress)
            results = {
                system: score_system(catalog, judged_queries, qrels, system, k)
                for system in systems
            }
        finally:
            catalog.close()
    return {
        "queries": len(judged_queries),
        "products": report.accepted,
        "skipped_queries": len(queries) - len(judged_queries),
        "rejected_rows": len(report.rejected),
        "k": k,
        "systems": results,
    }
