"""Retrieval quality and latency with the records in SQLite and in PostgreSQL, in one run.

    python benchmarks/keyword_backends.py             # markdown table
    python benchmarks/keyword_backends.py --json

The demo catalog (1,200 products) and its 300 labelled shopper queries are generated and
scored as `shopbot eval retrieval` scores them, in two stores: one with the records in a SQLite
file (FTS5, BM25), one in a PostgreSQL database (tsvector, ts_rank weighted by word rarity).
The dense vectors are the same in both, so the keyword system is what differs and the hybrid
shows what that difference does after fusion. PostgreSQL 15 (Debian's package) is started for
the run in a temporary folder on a free loopback port, as the tests do.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from postgres import postgres_server  # this folder, on sys.path when a script runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1200)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", default="keyword,dense,hybrid")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from bot.settings import load_settings
    from retrieval.demo.queries import write_eval_set
    from retrieval.evaluate import load_qrels, load_queries, score_system
    from retrieval.index import CatalogIndex, open_embedder

    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="shopbot-backends-") as tmp, postgres_server() as url:
        out = Path(tmp)
        write_eval_set(out, n_products=args.products, n_queries=args.queries, seed=args.seed)
        qrels = load_qrels(out / "qrels.tsv")
        queries = [  # the judged ones, as `shopbot eval retrieval` keeps
            q
            for q in load_queries(out / "queries.jsonl")
            if any(grade > 0 for grade in qrels.get(q["id"], {}).values())
        ]
        settings = load_settings(data_dir=out / "data")
        embedder = open_embedder(settings)  # one embedding cache: the second store embeds nothing
        for backend, database_url in (("sqlite", None), ("postgresql", url)):
            update = {"data_dir": out / backend, "database_url": database_url}
            catalog = CatalogIndex.open(settings.model_copy(update=update), embedder=embedder)
            catalog.ingest(out / "catalog.jsonl")
            results[backend] = {
                system: score_system(catalog, queries, qrels, system, k=10)
                for system in args.systems.split(",")
            }
            catalog.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{len(queries)} queries, {args.products} products\n")
    print("| records | system | nDCG@10 | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for backend, systems in results.items():
        for name, m in systems.items():
            print(
                f"| {backend} | {name} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} "
                f"| {m['recall@100']:.3f} | {m['mrr@10']:.3f} | {m['latency_ms_p50']} "
                f"| {m['latency_ms_p95']} |"
            )


if __name__ == "__main__":
    main()
