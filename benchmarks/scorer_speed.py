"""Time to score and order 200 recalled candidates for one shopper (features, Thompson draw,
reasons), the work the scorer adds to every chat turn.

    python benchmarks/scorer_speed.py            # p50 / p95 over 1,000 rankings
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()

    import numpy as np

    from retrieval.demo.catalog import generate_catalog
    from retrieval.profile import build_profile
    from retrieval.ranking import Candidate, ProductPosteriors, RankRequest, Scorer

    products = generate_catalog(args.candidates * 5, seed=1)
    rng = np.random.default_rng(0)
    posteriors = ProductPosteriors()
    for product in products[::2]:
        shown = float(rng.integers(1, 50))
        posteriors.update(product.id, shown, float(rng.binomial(int(shown), 0.1)))
    by_id = {p.id: p for p in products}
    history = [
        (p.id, kind, 0.0)
        for p, kind in zip(
            products[:40], ["click", "like", "impression", "purchase"] * 10, strict=True
        )
    ]
    profile = build_profile(history, by_id, now=0.0)
    scorer = Scorer(posteriors=posteriors, seed=0)
    request = RankRequest(colour=["black"], price_max=120)

    timings = []
    for run in range(args.runs):
        start = (run * 7) % (len(products) - args.candidates)
        candidates = [
            Candidate(p, relevance=1.0 / (60 + i), semantic=0.5, keyword=3.0, added_at=0.0)
            for i, p in enumerate(products[start : start + args.candidates])
        ]
        began = time.perf_counter()
        scorer.rank(candidates, request, profile, k=10, explore=True, now=0.0)
        timings.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    print(
        f"rank {args.candidates} candidates: p50 {cuts[49]:.2f} ms, p95 {cuts[94]:.2f} ms "
        f"({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
