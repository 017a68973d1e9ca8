"""Which messages does closeness to the policies send to a service answer, whatever the
parser says, and at what cost to out-of-scope refusals and product searches?

    python benchmarks/policy_match.py          # writes benchmarks/out/policy-match.json

The router answers a message from the policy passages when its closest section is at least
`policy_match` similar (cosine), or its closest sentence `policy_passage_match`, or the
closest question a section lists (`<!-- questions -->`) `policy_question_match`, and it is
closer to the policies than to the nearest product (`belongs_to_policies`, which also
eases this for service words such as "arrived broken"). The parser's opinion is left out
here (as if it were unsure of every row): the chat also requires a request the parser is
sure is a product search to be closer to a whole section. For several thresholds this
reports, on rows that played no part in choosing the default (the first 150 of each set
were used for that):
- service: held-out customer-service utterances of the shared data (Bitext) that the rule
  sends to the policies (the parser routes most of the rest there itself);
- out_of_scope: held-out out-of-scope utterances (CLINC150) it would answer from the
  policies instead of refusing;
- shopping: the demo store's shopper queries it would take from the product search.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.dialogue.service_answer import belongs_to_policies, match_policies  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.shop import Shop  # noqa: E402
from finetune.dataset import (  # noqa: E402
    OUT_OF_SCOPE_FILE,
    SHARED_DATA,
    SUPPORT_FILE,
    DatasetSizes,
    read_jsonl,
    split_out_of_scope,
    split_support,
)
from retrieval.demo.catalog import generate_catalog  # noqa: E402
from retrieval.demo.queries import generate_eval_set  # noqa: E402

CHOSEN_ON = 150
# (section, passage, question) thresholds; one above 1 turns that closeness off
THRESHOLDS = (
    (0.35, 0.5, 0.65),
    (0.4, 0.45, 0.65),
    (0.4, 0.5, 0.55),
    (0.4, 0.55, 0.65),
    (0.45, 0.5, 0.65),
    (0.4, 0.5, 0.5),
    (0.4, 0.5, 0.6),
    (0.4, 0.5, 0.65),
    (0.4, 0.5, 0.7),
    (0.4, 0.5, 1.01),
    (0.4, 1.01, 1.01),
    (1.01, 0.5, 1.01),
    (1.01, 1.01, 0.65),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/shopbot-bench"))
    parser.add_argument("--rows", type=int, default=300, help="rows of each set reported")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/policy-match.json"))
    parser.add_argument("--chosen-on", action="store_true", help="score the tuning rows instead")
    args = parser.parse_args()
    if not (SHARED_DATA / SUPPORT_FILE).is_file():
        raise SystemExit(f"needs the shared data in {SHARED_DATA}")

    settings = load_settings(data_dir=args.data_dir)
    shop = Shop(settings)
    shop.ensure_demo_catalog()
    queries, _ = generate_eval_set(generate_catalog(settings.demo_products), 600, 0)
    sizes = DatasetSizes()  # the parser's own split: its validation rows only
    _, oos = split_out_of_scope(
        read_jsonl(SHARED_DATA / OUT_OF_SCOPE_FILE),
        sizes.held_out_topics,
        sizes.validation_share,
        0,
    )
    random.Random(0).shuffle(oos)
    _, support = split_support(read_jsonl(SHARED_DATA / SUPPORT_FILE), sizes.validation_share, 0)
    random.Random(1).shuffle(support)
    rows = slice(0, CHOSEN_ON) if args.chosen_on else slice(CHOSEN_ON, CHOSEN_ON + args.rows)
    sets = {
        "service": [r["text"] for r in support[rows]],
        "out_of_scope": [r["text"] for r in oos[rows]],
        "shopping": [q["text"] for q in queries[rows]],
    }
    scored: dict[str, list[tuple[str, Any, float]]] = {}
    for name, texts in sets.items():
        scored[name] = []
        for number, text in enumerate(texts, start=1):
            found = match_policies(shop, text)
            scored[name].append((text, found, shop.nearest_match(text)))
            if number % 100 == 0:
                print(f"{name}: {number}/{len(texts)}", file=sys.stderr, flush=True)
    shop.close()

    def routed(name: str, section: float, passage: float, question: float) -> list[str]:
        rule = settings.model_copy(
            update={
                "policy_match": section,
                "policy_passage_match": passage,
                "policy_question_match": question,
            }
        )
        return [
            text
            for text, found, match in scored[name]
            if belongs_to_policies(found, text, False, lambda m=match: m, rule)
        ]

    def shares(section: float, passage: float, question: float) -> dict[str, float]:
        return {
            name: round(len(routed(name, section, passage, question)) / len(texts), 4)
            for name, texts in sets.items()
        }

    table = {
        "section {} / passage {} / question {}".format(*rule): shares(*rule) for rule in THRESHOLDS
    }
    chosen = (
        settings.policy_match,
        settings.policy_passage_match,
        settings.policy_question_match,
    )
    report = {
        "thresholds": {
            "policy_match": chosen[0],
            "policy_passage_match": chosen[1],
            "policy_question_match": chosen[2],
        },
        "answered_from_policies": shares(*chosen),
        "rows": {name: len(texts) for name, texts in sets.items()},
        "rows_used": "tuning rows" if args.chosen_on else f"rows after the first {CHOSEN_ON}",
        "by_threshold": table,
        "out_of_scope_answered": routed("out_of_scope", *chosen),
        "shopping_answered": routed("shopping", *chosen),
        "service_missed": sorted(set(sets["service"]) - set(routed("service", *chosen)))[:20],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
