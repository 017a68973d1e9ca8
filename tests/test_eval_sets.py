"""The shopper-written evaluation turns (the scripted conversations, and the needs told and
their contrast in `benchmarks/needs/`) are kept out of training: none of them is a row of
the shared training data, of the generated shopping turns `shopbot finetune build` trains
on, of the questions the demo policies list for retrieval, or close to a message written
for the intent head, so the figures in the README measure language the models and the
policy search never saw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from finetune.dataset import OUT_OF_SCOPE_FILE, SHARED_DATA, SUPPORT_FILE, DatasetSizes, read_jsonl
from finetune.intent_head import written_questions
from finetune.shopping_requests import generate_shopping_turns
from retrieval.demo.catalog import generate_catalog
from retrieval.policies import load_policy_docs

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
NEAR_COPY = 0.7  # of their words shared (of the two messages' words together)


def said() -> set[str]:
    turns = {
        turn["say"].lower().strip()
        for path in (BENCHMARKS / "conversations").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for turn in json.loads(line)["turns"]
    }
    needs = {
        row["text"].lower().strip()
        for path in (BENCHMARKS / "needs").glob("*.jsonl")
        for row in read_jsonl(path)
    }
    return turns | needs


def words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[^\W_]+", text.lower().replace("'", "")))


def test_no_evaluation_turn_is_a_generated_training_turn():
    sizes = DatasetSizes()
    rows = generate_shopping_turns(generate_catalog(1200), sizes.shopping_train, 0, "train")
    assert said().isdisjoint({row["text"].lower().strip() for row in rows})


def test_no_evaluation_turn_is_in_the_shared_data():
    if not (SHARED_DATA / SUPPORT_FILE).is_file():
        pytest.skip(f"the shared data is not in {SHARED_DATA}")
    texts = {
        row["text"].lower().strip()
        for name in (SUPPORT_FILE, OUT_OF_SCOPE_FILE)
        for row in read_jsonl(SHARED_DATA / name)
    }
    assert said().isdisjoint(texts)


def test_no_evaluation_turn_is_close_to_a_written_training_message():
    """Not even with its punctuation or a word or two changed: "is there free shipping?"
    beside a written "is there free shipping" would be a turn the head was trained on."""
    written = {words(row["text"]) for row in written_questions()}
    assert len(written) >= 900
    evaluated = [words(text) for text in said()]
    close = [
        " ".join(sorted(turn))
        for turn in evaluated
        if any(len(turn & row) >= NEAR_COPY * len(turn | row) for row in written)
    ]
    assert close == []


def test_no_evaluation_turn_is_a_question_a_demo_policy_lists():
    listed = {q.lower().strip() for doc in load_policy_docs() for q in doc.questions}
    assert len(listed) >= 600
    assert said().isdisjoint(listed)
