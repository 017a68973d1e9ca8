"""The parser's second opinion: a linear intent classifier over sentence embeddings.

The LM learnt the phrasing of its training sets; a shopper who writes "this is going
nowhere, get me a real person" or "so can i get the difference back or not" gets "out of
scope" from it. A softmax layer over the catalog embedder's vectors of the same training utterances
(the Bitext and CLINC train splits of `finetune.dataset`, the generated shopping turns, the
rows written the way shoppers type in `finetune/data/*.jsonl`: service questions, and needs
told rather than products named, "my feet are killing me after 12 hour shifts", as product
searches; and a messy copy of half the support rows and of every written one: lower-cased,
unpunctuated, one word misspelt) reads meaning rather than wording. `bot.nlu.second_opinion`
asks it when the LM says out of scope or is unsure.

    shopbot finetune intent-head --out finetune/adapters/default

writes `intent_head.npz` (weights, bias, intent names) and `intent_head.json` (the
embedding model it was trained with, the data hash, and its held-out accuracy). Training
embeds about 27,000 sentences (a few minutes on 2 CPU cores the first time; the vectors are
cached in the data dir's embedding cache) and fits in seconds.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.nlu.second_opinion import HEAD_CARD, HEAD_FILE
from finetune.dataset import SHARED_DATA, DatasetSizes, parser_splits, read_jsonl

MESSY_SHARE = 0.5  # of the support rows get a messy copy too
# Messages written the way shoppers type them (casual, terse, indirect, typo'd): service
# questions for the intents of the shared data, needs told as product searches; every one
# gets a messy copy too.
WRITTEN_DIR = Path(__file__).resolve().parent / "data"


def written_questions() -> list[dict]:
    """The rows of every `finetune/data/*.jsonl`."""
    return [row for path in sorted(WRITTEN_DIR.glob("*.jsonl")) for row in read_jsonl(path)]


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 400
    learning_rate: float = 0.05
    weight_decay: float = 1e-4
    seed: int = 0


def messy(text: str, rng: random.Random) -> str:
    """How people type it: lower case, no punctuation, one longer word misspelt."""
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    long_words = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    if long_words:
        i = rng.choice(long_words)
        word, at = words[i], rng.randrange(1, len(words[i]) - 1)
        words[i] = (
            word[:at] + word[at + 1 :]
            if rng.random() < 0.5
            else (word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :])
        )
    return " ".join(words)


def training_rows(
    products: Sequence[Any],
    shared_data: Path = SHARED_DATA,
    sizes: DatasetSizes | None = None,
    seed: int = 0,
) -> tuple[list[dict], list[dict]]:
    """(train, validation) rows of {"text", "intent"}: the splits `finetune build` makes, so
    nothing the adapter is evaluated on is trained on here either."""
    splits = parser_splits(products, shared_data, sizes or DatasetSizes(), seed)
    support_train, support_val = splits["support"]
    oos_train, oos_val = splits["out_of_scope"]
    shop_train, shop_val = splits["shopping"]
    rng = random.Random(f"{seed}:messy")
    train = [{"text": r["text"], "intent": r["intent"]} for r in support_train + oos_train]
    train += [
        {"text": messy(r["text"], rng), "intent": r["intent"]}
        for r in support_train
        if rng.random() < MESSY_SHARE
    ]
    written = written_questions()
    train += [{"text": r["text"], "intent": r["intent"]} for r in written]
    train += [{"text": messy(r["text"], rng), "intent": r["intent"]} for r in written]
    train += [{"text": r["text"], "intent": r["intent"]} for r in shop_train]
    validation = [{"text": r["text"], "intent": r["intent"]} for r in support_val + oos_val]
    validation += [{"text": r["text"], "intent": r["intent"]} for r in shop_val]
    return train, validation


def fit(vectors: np.ndarray, labels: Sequence[str], config: HeadConfig = HeadConfig()) -> dict:
    """A softmax layer over `vectors`, every intent weighted alike (classes of a few hundred
    rows count as much as the thousands of shopping turns)."""
    import torch

    intents = sorted(set(labels))
    index = {intent: i for i, intent in enumerate(intents)}
    y = torch.tensor([index[label] for label in labels])
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    counts = Counter(labels)
    class_weight = torch.tensor([len(labels) / (len(intents) * counts[i]) for i in intents])
    torch.manual_seed(config.seed)
    layer = torch.nn.Linear(x.shape[1], len(intents))
    optimiser = torch.optim.AdamW(
        layer.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    loss_of = torch.nn.CrossEntropyLoss(weight=class_weight.float())
    for _ in range(config.epochs):
        optimiser.zero_grad()
        loss = loss_of(layer(x), y)
        loss.backward()
        optimiser.step()
    return {
        "weight": layer.weight.detach().numpy().T.copy(),
        "bias": layer.bias.detach().numpy().copy(),
        "intents": intents,
        "loss": round(float(loss.detach()), 4),
    }


def accuracy(head: dict, vectors: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Held-out accuracy, and recall of out_of_scope and of the customer-service intents."""
    predicted = np.asarray(head["intents"])[np.argmax(vectors @ head["weight"] + head["bias"], 1)]
    labels = np.asarray(labels)
    oos = labels == "out_of_scope"
    return {
        "accuracy": round(float(np.mean(predicted == labels)), 4),
        "out_of_scope_recall": round(float(np.mean(predicted[oos] == "out_of_scope")), 4),
        "in_scope_called_out_of_scope": round(float(np.mean(predicted[~oos] == "out_of_scope")), 4),
    }


def train_head(
    embedder: Any,
    products: Sequence[Any],
    out_dir: Path,
    *,
    embedding_model: str,
    shared_data: Path = SHARED_DATA,
    config: HeadConfig = HeadConfig(),
) -> dict[str, Any]:
    """Embed the training rows with `embedder`, fit, and write the head into `out_dir`;
    returns its card (what `intent_head.json` holds)."""
    train, validation = training_rows(products, shared_data, seed=config.seed)
    train_vectors = embedder.embed_documents([row["text"] for row in train])
    head = fit(train_vectors, [row["intent"] for row in train], config)
    val_vectors = embedder.embed_documents([row["text"] for row in validation])
    digest = hashlib.sha256(
        "\n".join(f"{r['intent']}\t{r['text']}" for r in train).encode()
    ).hexdigest()
    card = {
        "embedding_model": embedding_model,
        "intents": head["intents"],
        "train_rows": len(train),
        "validation_rows": len(validation),
        "data_hash": digest[:16],
        "final_loss": head["loss"],
        "validation": accuracy(head, val_vectors, [row["intent"] for row in validation]),
        "config": config.__dict__,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_dir / HEAD_FILE,
        weight=head["weight"].astype(np.float32),
        bias=head["bias"].astype(np.float32),
        intents=np.asarray(head["intents"]),
    )
    (out_dir / HEAD_CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
