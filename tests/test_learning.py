"""Learning the scorer's weights from logged feedback, versioned and picked up live."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli import main
from retrieval.events import EventStore, FeedbackEvent
from retrieval.learning import WeightStore, train_weights
from retrieval.ranking import DEFAULT_WEIGHTS


def logged_rows(n: int = 600, seed: int = 0):
    """Impressions where shoppers click well-rated products far more often."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rating = float(rng.uniform(-1, 1))
        relevance = float(rng.uniform(0, 1))
        p = 1 / (1 + np.exp(-(3 * rating + 0.5 * relevance - 1)))
        rows.append(({"rating": rating, "relevance": relevance}, int(rng.random() < p), 1.0, i))
    return rows


def test_training_learns_what_predicts_clicks_and_beats_the_old_weights_on_new_data():
    weights, metrics = train_weights(logged_rows(), current={"rating": -1.0})

    assert weights["rating"] > 1.5
    assert weights["affinity_brand"] == DEFAULT_WEIGHTS["affinity_brand"]  # no data: kept
    assert metrics["heldout_auc"] > 0.8 > metrics["heldout_auc_previous"]
    assert metrics["heldout_examples"] == 120


def test_too_little_data_is_a_clear_message():
    with pytest.raises(ValueError, match="need at least 50 logged impressions"):
        train_weights(logged_rows(20))


def test_versions_are_kept_and_the_newest_wins(tmp_path):
    store = WeightStore(tmp_path / "scorer")
    store.save({"rating": 1.0}, {"heldout_auc": 0.6}, examples=100)
    store.save({"rating": 2.0}, {"heldout_auc": 0.7}, examples=200)

    assert store.latest_version() == 2
    assert store.latest().weights == {"rating": 2.0}
    assert sorted(p.name for p in (tmp_path / "scorer").iterdir()) == [
        "weights-0001.json",
        "weights-0002.json",
    ]


def test_scorer_train_command_learns_from_the_event_store(tmp_path):
    events = EventStore(tmp_path / "events.sqlite")
    for i, (features, label, _, ts) in enumerate(logged_rows(300)):
        events.record(FeedbackEvent("impression", f"p{i}", f"s{i}", ts=ts, features=features))
        if label:
            events.record(FeedbackEvent("click", f"p{i}", f"s{i}", ts=ts + 0.5))
    events.close()

    result = CliRunner().invoke(main, ["scorer", "train", "--json", "--data-dir", str(tmp_path)])
    shown = CliRunner().invoke(main, ["scorer", "show", "--json", "--data-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == 1 and report["weights"]["rating"] > 1.0
    assert json.loads(shown.stdout)["weights"] == report["weights"]


def test_a_click_nudges_the_weights_toward_what_was_chosen_and_only_a_little():
    from retrieval.learning import ONLINE_WEIGHT_LIMIT, pairwise_step

    weights = dict(DEFAULT_WEIGHTS)
    chosen = {"rating": 1.0, "relevance": 0.5}
    others = [{"rating": -1.0, "relevance": 0.9}, {"rating": -0.5, "relevance": 1.0}]

    once = pairwise_step(weights, chosen, others)
    assert once["rating"] > weights["rating"] and once["relevance"] < weights["relevance"]
    assert abs(once["rating"] - weights["rating"]) < 0.1

    flooded = weights
    for _ in range(10_000):
        flooded = pairwise_step(flooded, chosen, others)
    assert max(abs(v) for v in flooded.values()) <= ONLINE_WEIGHT_LIMIT
