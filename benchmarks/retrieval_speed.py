"""Ingest and search speed on generated catalogs, each size in a fresh process.

    python benchmarks/retrieval_speed.py                      # 1,200 (demo) and 10,000 products
    python benchmarks/retrieval_speed.py --sizes 1200,10000,100000 --json

Per size it reports: ingest from empty (fresh data dir and embedding cache, so every product
is embedded), re-ingest of the unchanged file, products per second, the process's peak memory
(RSS, which includes Chroma's native index), and hybrid search latency p50/p95 over distinct
shopper queries, each with slot filters (price, category, stock, colour).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(size: int, searches: int, seed: int) -> dict:
    from bot.settings import load_settings
    from retrieval.demo.catalog import generate_catalog, write_catalog_jsonl
    from retrieval.demo.queries import generate_eval_set
    from retrieval.filters import ProductFilters
    from retrieval.index import CatalogIndex

    with tempfile.TemporaryDirectory(prefix="shopbot-bench-") as tmp:
        products = generate_catalog(size, seed=seed)
        path = Path(tmp) / "catalog.jsonl"
        write_catalog_jsonl(products, path)
        catalog = CatalogIndex.open(load_settings(data_dir=Path(tmp) / "data"))
        catalog.embedder.load()  # model load is start-up cost, not ingest cost

        started = time.perf_counter()
        first = catalog.ingest(path)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        again = catalog.ingest(path)
        reingest_s = time.perf_counter() - started
        assert again.unchanged == first.accepted, "re-ingest should skip every row"

        queries, _ = generate_eval_set(products[: min(size, 5000)], n_queries=searches, seed=seed)
        categories = sorted({p.category for p in products if p.category})
        rng = random.Random(seed)
        latencies = []
        for query in queries:
            filters = ProductFilters(
                price_max=rng.choice([None, 50, 100, 250]),
                category=rng.choice([[], [], rng.choice(categories)]),
                in_stock=rng.choice([None, True]),
                colour=rng.choice([[], [], ["black"], ["red", "blue"]]),
            )
            started = time.perf_counter()
            catalog.search(query["text"], k=10, filters=filters)
            latencies.append((time.perf_counter() - started) * 1000)
        catalog.close()

    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "products": size,
        "ingest_s": round(ingest_s, 2),
        "ingest_products_per_s": round(first.accepted / ingest_s, 1),
        "reingest_unchanged_s": round(reingest_s, 2),
        "search_queries": len(latencies),
        "search_ms_p50": round(cuts[49], 2),
        "search_ms_p95": round(cuts[94], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1200,10000", help="comma-separated catalog sizes")
    parser.add_argument("--searches", type=int, default=300, help="queries timed per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # worker mode
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args.one, args.searches, args.seed)))
        return

    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        print(f"measuring {size:,} products...", file=sys.stderr)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(size),
                "--searches",
                str(args.searches),
                "--seed",
                str(args.seed),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps({"sizes": rows}, indent=2))
        return
    print(
        "| products | ingest from empty | products/s | re-ingest unchanged "
        "| search p50 | search p95 | peak RSS |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['products']:,} | {r['ingest_s']} s | {r['ingest_products_per_s']} "
            f"| {r['reingest_unchanged_s']} s | {r['search_ms_p50']} ms | {r['search_ms_p95']} ms "
            f"| {r['peak_rss_mb']} MB |"
        )


if __name__ == "__main__":
    main()
