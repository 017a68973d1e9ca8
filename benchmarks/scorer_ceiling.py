"""How much could any learner save in the shopper simulator, and how much can a profile add?

    python benchmarks/scorer_ceiling.py --sessions 5000 --seed 0

Plays the same sessions as `shopbot bench scorer` with a policy that is told every product's
hidden appeal from the first session (it still knows nothing about each shopper's own taste),
so it pays no learning cost at all. Its cumulative regret is a floor for the product-level
learning that greedy and Thompson sampling do, and shows how much room the bar leaves.

Then it scores returning shoppers' requests as the bench's personalisation figure does, with
the scorer Thompson sampling learnt, but with a profile told each shopper's hidden brand tastes
and price level instead of the one their events build: the most a profile can add to that
scorer's nDCG@10, however well it learns.
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
    from retrieval.simulator import POLICIES, ShopperSimulator, examination

    sim = ShopperSimulator(
        generate_catalog(args.products, seed=args.seed), shoppers=args.shoppers, seed=args.seed
    )
    plan = sim.draw_plan(args.sessions)  # the bench's first draw, so the same sessions
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

    _, (scorer, history) = sim.play("thompson", plan, seed=1000 + POLICIES.index("thompson"))
    told, without = sim.personalisation(scorer, history, told_tastes=True)
    print(
        f"returning shoppers nDCG@10 with a profile told their tastes: {told:.4f}, "
        f"without history: {without:.4f} ({told / without:.3f}x)"
    )


if __name__ == "__main__":
    main()
