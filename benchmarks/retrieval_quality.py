"""Retrieval quality on the demo store's labelled query set, every system in one run.

    python benchmarks/retrieval_quality.py            # markdown table with ratios
    python benchmarks/retrieval_quality.py --json

The same as `shopbot demo export DIR` followed by `shopbot eval retrieval ... --json`: the demo
catalog (1,200 products) and 300 shopper queries with graded judgements are generated, the
catalog is ingested into a fresh store, and each system answers every query.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1200)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", default="keyword,dense,hybrid,ranked")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from bot.settings import load_settings
    from retrieval.demo.queries import write_eval_set
    from retrieval.evaluate import evaluate_retrieval

    with tempfile.TemporaryDirectory(prefix="shopbot-quality-") as tmp:
        out = Path(tmp)
        write_eval_set(out, n_products=args.products, n_queries=args.queries, seed=args.seed)
        result = evaluate_retrieval(
            load_settings(data_dir=out / "data"),
            out / "catalog.jsonl",
            out / "queries.jsonl",
            out / "qrels.tsv",
            systems=args.systems.split(","),
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    systems = result["systems"]
    print(f"{result['queries']} queries, {result['products']} products\n")
    print("| system | nDCG@10 | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, m in systems.items():
        print(
            f"| {name} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} | {m['recall@100']:.3f} "
            f"| {m['mrr@10']:.3f} | {m['latency_ms_p50']} | {m['latency_ms_p95']} |"
        )
    if {"hybrid", "keyword", "dense"} <= set(systems):
        best = systems["hybrid"]["ndcg@10"]
        print(
            f"\nhybrid nDCG@10 = {best / systems['keyword']['ndcg@10']:.2f}x keyword, "
            f"{best / systems['dense']['ndcg@10']:.2f}x dense"
        )


if __name__ == "__main__":
    main()
