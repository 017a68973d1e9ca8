"""The LM in process beside the LM on llama.cpp's server, side by side in one run: reply
decoding speed, and intent accuracy / out-of-scope recall of the parse.

    .ci/build-llama-server                        # once (~8 min on 2 cores), cached
    python benchmarks/lm_server.py                # 20 replies, 300 held-out intent rows
    python benchmarks/lm_server.py --gguf-type q8_0 --rows 0    # replies only

The default model with the shipped adapter is exported once (`shopbot finetune export`,
into benchmarks/out/export-<type>/), and llama-server loads that GGUF with 2 threads.
In process is the default `int8` path (`bot/lm/int8.py`), timed as
`benchmarks/lm_speed.py` times it: decode tokens/s of the reply's tokens after the prompt
is read. On the server it is llama.cpp's own count (`timings.predicted_per_second`, through
`bot.lm.server_chat`), for the same prompts and token budget. The intent rows are those of
`benchmarks/intents.py` (the held-out split of `shopbot finetune build`, a random sample);
skipped when ../shared/data is absent. Writes benchmarks/out/lm_server.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def export(gguf_type: str) -> Path:
    """The exported GGUF of the default model + shipped adapter (written once)."""
    from finetune import DEFAULT_ADAPTER
    from finetune.export import export_lm

    out = OUT / f"export-{gguf_type}"
    gguf = out / f"shopbot.{gguf_type}.gguf"
    if not gguf.is_file():
        export_lm(out, adapter=DEFAULT_ADAPTER, data_dir=Path(".shopbot"), gguf_type=gguf_type)
    return gguf


def reply_prompts(count: int) -> list[list]:
    from bot.prompts import chat_prompt
    from finetune.reply_examples import generate_reply_examples
    from retrieval.demo.catalog import generate_catalog
    from retrieval.policies import load_policy_docs

    rows = generate_reply_examples(
        None, generate_catalog(1200), load_policy_docs(), count, seed=3, render=False
    )
    template = chat_prompt("reply")
    return [
        template.format_messages(store="Shopbot Demo Store", facts=r["facts"], message=r["message"])
        for r in rows
    ]


def decode_rates(model, prompts: list[list]) -> list[float]:
    """Decode tokens/s of each reply (after its prompt is read), as the model reports it."""
    from bot.lm.chat_model import timings_of

    return [timings_of(model.invoke(messages))["decode_tokens_per_s"] for messages in prompts]


def intent_rows(count: int) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from intents import validation_rows

    rows = validation_rows()
    random.Random(0).shuffle(rows)
    return rows[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rows", type=int, default=300, help="held-out intent rows (0: none)")
    parser.add_argument("--gguf-type", default="q8_0", choices=("q8_0", "f16"))
    parser.add_argument("--gguf", type=Path, help="a GGUF to serve instead of the export")
    args = parser.parse_args()

    import torch

    from bot.lm.chat_model import LocalChatModel, remote_chat_model
    from bot.lm.llama_cpp import LlamaServer
    from bot.lm.loading import load_lm, load_tokenizer
    from bot.lm.server import CompletionServer
    from bot.nlu.parser import IntentParser, SlotVocabulary
    from finetune import DEFAULT_ADAPTER
    from finetune.dataset import SHARED_DATA
    from finetune.evaluate import evaluate_intents
    from retrieval.demo.catalog import generate_catalog

    gguf = args.gguf or export(args.gguf_type)
    lm = load_lm(data_dir=Path(".shopbot"), adapter=DEFAULT_ADAPTER, dtype="int8")
    prompts = reply_prompts(args.replies)
    results: dict = {"threads": torch.get_num_threads(), "gguf": gguf.name}
    with LlamaServer(gguf, threads=torch.get_num_threads()) as server:
        local = LocalChatModel(lm=lm, max_new_tokens=args.max_tokens)
        served = remote_chat_model(server.url, "default", None, args.max_tokens)
        for model in (local, served):
            decode_rates(model, prompts[:1])  # warm up
        here, there = decode_rates(local, prompts), decode_rates(served, prompts)
        results["reply_decode_tokens_per_s_p50"] = {
            "in_process_int8": round(statistics.median(here), 1),
            "llama_server": round(statistics.median(there), 1),
        }
        ratio = statistics.median(there) / statistics.median(here)
        results["reply_decode_speedup"] = round(ratio, 2)
        print(json.dumps(results), flush=True)
        have_data = (SHARED_DATA / "customer_support_intents.dev.jsonl").is_file()
        if args.rows and have_data:
            rows = intent_rows(args.rows)
            vocabulary = SlotVocabulary.from_products(generate_catalog(1200))
            tokenizer_only = load_tokenizer(data_dir=Path(".shopbot"))
            parsers = {
                "in_process_int8": IntentParser(lm, vocabulary),
                "llama_server": IntentParser(
                    tokenizer_only, vocabulary, server=CompletionServer(server.url)
                ),
            }
            keep = ("examples", "accuracy", "macro_f1", "out_of_scope_recall", "slot_f1",
                    "latency_ms_p50", "latency_ms_p95")  # fmt: skip
            results["intents"] = {}
            for name, intent_parser in parsers.items():
                scores = evaluate_intents(intent_parser, rows)
                results["intents"][name] = {key: scores[key] for key in keep}
                print(name, json.dumps(results["intents"][name]), flush=True)
        elif args.rows:
            print(f"intents skipped: no shared data at {SHARED_DATA}", file=sys.stderr)
    OUT.mkdir(exist_ok=True)
    (OUT / "lm_server.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
