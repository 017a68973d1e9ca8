"""How much regret could any learning policy save in the shopper simulator?

    python benchmarks/scorer_ceiling.py --sessions 5000 --seed 0

Plays the same sessions as `shopbot bench scorer` with a policy that is told every product's
hidden appeal from the first session (it still knows nothing about each shopper's own taste),
so it pays no learning cost at all. Its cumulative regret is a floor for the product-level
learning that greedy and Thompson sampling do, and shows how much room the bar leaves.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--shoppers", type=int, default=200)
    parser.add_argument("--products", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from retrieval.demo.catalog import generate_catalog
    from retrieval.simulator import ShopperSimulator, examination

    sim = ShopperSimulator(
        generate_catalog(args.products, seed=args.seed), shoppers=args.shoppers, seed=args.seed
    )
    plan = [
        (int(sim.rng.integers(len(sim.shoppers))), int(sim.rng.integers(3)))
        for _ in range(args.sessions)
    ]  # drawn exactly as ShopperSimulator.run draws them
    regret = 0.0
    for step, (who, interest) in enumerate(plan):
        shopper = sim.shoppers[who]
        wanted = shopper.types[interest]
        candidates = sim.candidates(wanted, progress=step / len(plan))
        truth = {
            c.product.id: sim.click_probability(shopper, c.product, wanted) for c in candidates
        }
        # The click model's own terms: hidden appeal, minus its penalty for the wrong type.
        ranked = sorted(
            candidates,
            key=lambda c: -(sim.appeal[c.product.id] - (0.0 if c.relevance >= 1.0 else 2.0)),
        )[: sim.slots]
        best = sorted(truth.values(), reverse=True)[: sim.slots]
        regret += sum(examination(i) * p for i, p in enumerate(best))
        regret -= sum(examination(i) * truth[c.product.id] for i, c in enumerate(ranked))
    print(f"appeal-oracle cumulative regret after {args.sessions} sessions: {regret:.1f}")


if __name__ == "__main__":
    main()
