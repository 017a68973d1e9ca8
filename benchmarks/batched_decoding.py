"""Decoding passes of concurrent replies one after another vs as one batch (`feed_together`).

    python benchmarks/batched_decoding.py              # 2, 3 and 4 replies of ~300-token prompts

The default model and adapter with the default (int8) weights. Each reply has read a prompt
of its own length; each round feeds every reply its next token, first one pass per reply
(`Decoder.feed`), then all in one pass (caches copied in and out included). Prints the
median time of a round for each way, and how many of the written tokens the two ways agree
on (bf16 rounds a batched pass a little differently).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.lm.decoding import Decoder, LMPass, feed_together  # noqa: E402
from bot.lm.loading import load_lm  # noqa: E402
from finetune import DEFAULT_ADAPTER  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replies", default="2,3,4")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path(".shopbot"))
    args = parser.parse_args()

    lm = load_lm(data_dir=args.data_dir, adapter=DEFAULT_ADAPTER)
    words = "waterproof rain jacket for hiking in the mountains, rated by shoppers, in stock. "
    base = lm.tokenizer.encode(words * 40, add_special_tokens=False)
    results = {}
    for count in (int(n) for n in args.replies.split(",")):
        prompts = [base[: 280 + 30 * n] for n in range(count)]
        timings = {}
        for way in ("one by one", "batched"):
            decoders = [Decoder(lm, draft_tokens=0) for _ in prompts]
            nexts = [int(d.feed(p).argmax()) for d, p in zip(decoders, prompts, strict=True)]
            rounds = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                passes = [LMPass(d, [t], 1) for d, t in zip(decoders, nexts, strict=True)]
                if way == "batched":
                    feed_together(passes)
                else:
                    for step in passes:
                        step.logprobs = step.decoder.feed(step.token_ids)
                rounds.append((time.perf_counter() - started) * 1000)
                nexts = [int(step.logprobs.argmax()) for step in passes]
            written = [d.tokens[len(p) :] for d, p in zip(decoders, prompts, strict=True)]
            timings[way] = (statistics.median(rounds), written)
        alone, together = timings["one by one"], timings["batched"]
        same = sum(a == b for x, y in zip(alone[1], together[1], strict=True)
                   for a, b in zip(x, y, strict=True))  # fmt: skip
        results[count] = {
            "round_ms_one_by_one": round(alone[0], 1),
            "round_ms_batched": round(together[0], 1),
            "speedup": round(alone[0] / together[0], 2),
            "tokens_agreeing": f"{same}/{sum(len(t) for t in alone[1])}",
        }
        print(count, json.dumps(results[count]), flush=True)


if __name__ == "__main__":
    main()
