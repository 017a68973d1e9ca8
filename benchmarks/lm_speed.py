"""Speed of the LM on this machine's CPU: intent-parse latency and reply generation rate,
naive fp32 plain greedy decoding beside bf16 and int8 decoding (the default), with the
shipped adapter merged, all in one run.

    python benchmarks/lm_speed.py                    # 100 parses, 20 replies per variant
    python benchmarks/lm_speed.py --dtypes bfloat16,bfloat16:nodraft   # drafts off

Parses run as the chat does, with the catalog's slot vocabulary, so their drafts can guess
the catalog values a message names; each reports its forward passes beside its time
(`nodraft`: plain greedy decoding, no drafts and no shared prompt prefix). Reply
generation is timed twice: decode tokens/s (the rate text streams at, after the
prompt is read) and overall tokens/s (prompt reading included).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
DEFAULT_VARIANTS = "float32:nodraft,bfloat16,int8"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parses", type=int, default=100)
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--dtypes", default=DEFAULT_VARIANTS)
    args = parser.parse_args()

    import torch

    from bot.lm.chat_model import LocalChatModel, timings_of
    from bot.lm.loading import load_lm
    from bot.nlu.parser import IntentParser, SlotVocabulary
    from bot.prompts import chat_prompt
    from finetune import DEFAULT_ADAPTER
    from finetune.reply_examples import generate_reply_examples
    from finetune.shopping_requests import generate_shopping_turns
    from retrieval.demo.catalog import generate_catalog
    from retrieval.policies import load_policy_docs

    catalog = generate_catalog(1200)
    turns = generate_shopping_turns(catalog, args.parses, seed=3, split="eval")
    replies = generate_reply_examples(
        None, catalog, load_policy_docs(), args.replies, seed=3, render=False
    )
    results = {"threads": torch.get_num_threads()}
    for variant in args.dtypes.split(","):
        dtype, _, mode = variant.partition(":")
        drafts = mode != "nodraft"
        lm = load_lm(data_dir=Path(".shopbot"), adapter=DEFAULT_ADAPTER, dtype=dtype)
        vocabulary = SlotVocabulary.from_products(catalog)
        parser_ = IntentParser(lm, vocabulary, draft_tokens=12 if drafts else 0,
                               reuse_prefix=drafts)  # fmt: skip
        parser_.parse("warm up")
        parse_ms, passes = [], []
        for turn in turns:
            parse = parser_.parse(turn["text"], turn["previous"])
            parse_ms.append(parse.elapsed_ms)
            passes.append(parse.passes)
        model = LocalChatModel(lm=lm, max_new_tokens=64, draft_tokens=6 if drafts else 0,
                               reuse_prefix=drafts)  # fmt: skip
        decode, overall, tokens = [], [], []
        for row in replies:
            written = model.invoke(
                chat_prompt("reply").format_messages(
                    store="Shopbot Demo Store", facts=row["facts"], message=row["message"]
                )
            )
            stats = timings_of(written)
            decode.append(stats["decode_tokens_per_s"])
            overall.append(stats["tokens_per_s"])
            tokens.append(stats["new_tokens"])
        results[variant] = {
            "parse_ms_p50": round(statistics.median(parse_ms), 1),
            "parse_ms_p95": round(sorted(parse_ms)[int(0.95 * (len(parse_ms) - 1))], 1),
            "parse_passes_mean": round(statistics.mean(passes), 2),
            "parse_passes_p50": statistics.median(passes),
            "reply_decode_tokens_per_s_p50": round(statistics.median(decode), 1),
            "reply_tokens_per_s_p50": round(statistics.median(overall), 1),
            "reply_new_tokens_mean": round(statistics.mean(tokens), 1),
        }
        print(variant, json.dumps(results[variant]), flush=True)
    OUT.mkdir(exist_ok=True)
    name = "lm_speed.json" if args.dtypes == DEFAULT_VARIANTS else "lm_speed-variants.json"
    (OUT / name).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
