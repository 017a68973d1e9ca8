"""Intent accuracy, out-of-scope recall and slot F1: the shipped adapter beside the base model.

The validation split is the one `shopbot finetune build` holds out (seed 0): 15% of the
shared customer-support utterances per intent, the out-of-scope utterances of CLINC topics
never trained on, and 1,000 shopping turns written with phrasings kept out of training.

    python benchmarks/intents.py --limit 600             # adapter beside base, 600 rows
    python benchmarks/intents.py --systems adapter       # the adapter on every row
    python benchmarks/intents.py --systems adapter,adapter+head --limit 600
                                                  # ... and with the intent head's second opinion

Writes benchmarks/out/intents-{N|all}.json; skips cleanly when ../shared/data is absent.
The base model has no notion of the intent names beyond the constrained decoding, so it is
slow (it writes long slot lines) and near chance: `--limit 600` keeps its run short.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def validation_rows(seed: int = 0) -> list[dict]:
    from transformers import AutoTokenizer

    from bot.lm.loading import resolve_model
    from finetune.dataset import build_dataset
    from retrieval.demo.catalog import generate_catalog
    from retrieval.policies import load_policy_docs

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("default", Path(".shopbot")))
    with tempfile.TemporaryDirectory() as folder:
        build_dataset(
            tokenizer, generate_catalog(1200), load_policy_docs(), Path(folder), seed=seed
        )
        path = Path(folder) / "intents.validation.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def second_opinion():
    """The shipped intent head over the default embedder (its vectors cached in .shopbot)."""
    from bot.nlu.second_opinion import SecondOpinion
    from bot.settings import load_settings
    from retrieval.index import open_embedder

    settings = load_settings(data_dir=Path(".shopbot"))
    return SecondOpinion.open(settings, open_embedder(settings).embed_query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--systems",
        default="adapter,base",
        help="adapter, adapter+head or base, each with :DTYPE optionally",
    )
    parser.add_argument("--limit", type=int, default=0, help="Score a random N rows only.")
    args = parser.parse_args()

    from bot.lm.loading import load_lm
    from bot.nlu.parser import IntentParser, SlotVocabulary
    from finetune import DEFAULT_ADAPTER
    from finetune.dataset import SHARED_DATA
    from finetune.evaluate import evaluate_intents
    from retrieval.demo.catalog import generate_catalog

    if not (SHARED_DATA / "customer_support_intents.dev.jsonl").is_file():
        print(f"skipped: no shared data at {SHARED_DATA}", file=sys.stderr)
        return
    rows = validation_rows()
    if args.limit:
        random.Random(0).shuffle(rows)
        rows = rows[: args.limit]
    vocabulary = SlotVocabulary.from_products(generate_catalog(1200))
    results = {}
    for system in args.systems.split(","):
        name, _, dtype = system.partition(":")  # e.g. "adapter:int8", "adapter+head"
        adapter = DEFAULT_ADAPTER if name.startswith("adapter") else None
        lm = load_lm(data_dir=Path(".shopbot"), adapter=adapter, dtype=dtype or "bfloat16")
        second = second_opinion() if name.endswith("+head") else None
        parser = IntentParser(lm, vocabulary, second_opinion=second)
        results[system] = evaluate_intents(parser, rows)
        summary = {k: v for k, v in results[system].items() if k != "per_intent"}
        print(system, json.dumps(summary), file=sys.stderr, flush=True)
        OUT.mkdir(exist_ok=True)
        name = f"intents-{args.limit or 'all'}.json"
        (OUT / name).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    keys = [
        "examples",
        "accuracy",
        "macro_f1",
        "out_of_scope_recall",
        "in_scope_rejected",
        "shopping_rejected",
        "slot_f1",
        "query_f1",
        "latency_ms_p50",
        "latency_ms_p95",
    ]
    print(f"{'metric':<22}" + "".join(f"{name:>12}" for name in results))
    for key in keys:
        print(f"{key:<22}" + "".join(f"{str(r[key]):>12}" for r in results.values()))


if __name__ == "__main__":
    main()
