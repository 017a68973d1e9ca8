"""Learning the scorer's feature weights from logged feedback, with versions you can inspect.

Every impression the bot logs carries the scorer's features; a click, like, add-to-cart or
purchase that follows makes it a positive example (`EventStore.training_rows`). A logistic
regression over those features, fitted offline by `shopbot scorer train`, becomes the new
weights. The newest examples are held out: a version records how well it ranks them (AUC)
next to the weights it replaces, and is saved as `weights-NNNN.json` (or, with a shared
database, as a row every worker reads). A running server picks up a new version on its next
request, without a restart. Between trainings each click (or
dislike) nudges the weights in memory: `pairwise_step`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.database import open_database
from retrieval.ranking import FEATURES, checked_weights

MIN_EXAMPLES = 50


@dataclass
class TrainedWeights:
    version: int
    weights: dict[str, float]
    trained_at: float
    examples: int
    metrics: dict[str, float]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    combined = np.concatenate([positives, negatives])
    for value in np.unique(combined):  # average ranks of ties
        tied = combined == value
        ranks[tied] = ranks[tied].mean()
    return float(
        (ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2)
        / (len(positives) * len(negatives))
    )


def fit_logistic(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, l2: float = 1.0, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """Weighted, L2-regularised logistic regression by Newton's method: (coefficients, bias)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        gradient = design.T @ (weight * (p - y)) + penalty * theta
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-6:
            break
    return theta[:-1], float(theta[-1])


def train_weights(
    rows: Sequence[tuple[Mapping[str, float], int, float, float]],
    *,
    current: Mapping[str, float] | None = None,
    holdout: float = 0.2,
    l2: float = 1.0,
) -> tuple[dict[str, float], dict[str, float]]:
    """New weights and their held-out metrics from (features, label, weight, ts) rows.

    Features that never vary in the data keep their current weight: the data says nothing
    about them. Raises ValueError when there is too little data to learn from.
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be between 0 and 1, but got {holdout}")
    current = checked_weights(current)
    ordered = sorted(rows, key=lambda row: row[3])
    labels = np.array([row[1] for row in ordered], dtype=float)
    if len(ordered) < MIN_EXAMPLES or labels.min() == labels.max():
        raise ValueError(
            f"need at least {MIN_EXAMPLES} logged impressions with both clicked and unclicked "
            f"ones to learn weights, but got {len(ordered)} ({int(labels.sum())} positive)"
        )
    x = np.array([[row[0].get(name, 0.0) for name in FEATURES] for row in ordered])
    sample_weight = np.array([row[2] for row in ordered], dtype=float)
    split = int(len(ordered) * (1 - holdout))
    coefficients, _ = fit_logistic(x[:split], labels[:split], sample_weight[:split], l2=l2)
    varies = x[:split].std(axis=0) > 1e-9
    learned = {
        name: round(float(coefficients[i]), 4) if varies[i] else current[name]
        for i, name in enumerate(FEATURES)
    }
    test_x, test_y = x[split:], labels[split:]
    metrics = {
        "train_examples": split,
        "heldout_examples": len(ordered) - split,
        "heldout_auc": round(auc(test_x @ np.array(list(learned.values())), test_y), 4),
        "heldout_auc_previous": round(
            auc(test_x @ np.array([current[f] for f in FEATURES]), test_y), 4
        ),
    }
    return learned, metrics


ONLINE_LEARNING_RATE = 0.005
ONLINE_WEIGHT_LIMIT = 5.0


def pairwise_step(
    weights: Mapping[str, float],
    preferred: Mapping[str, float],
    others: Sequence[Mapping[str, float]],
    *,
    learning_rate: float = ONLINE_LEARNING_RATE,
) -> dict[str, float]:
    """One online step of pairwise logistic learning: the shopper chose `preferred` over
    `others` (shown beside it), so move the weights to score it higher than them.

    Small, bounded steps: one shopper's clicks nudge the weights, they cannot take them over.
    """
    if not others:
        return dict(weights)
    w = np.array([weights[name] for name in FEATURES])
    chosen = np.array([preferred.get(name, 0.0) for name in FEATURES])
    gradient = np.zeros_like(w)
    for other in others:
        difference = chosen - np.array([other.get(name, 0.0) for name in FEATURES])
        gradient += difference / (1.0 + np.exp(np.clip(w @ difference, -30, 30)))
    w = np.clip(
        w + learning_rate * gradient / len(others), -ONLINE_WEIGHT_LIMIT, ONLINE_WEIGHT_LIMIT
    )
    return {name: round(float(value), 6) for name, value in zip(FEATURES, w, strict=True)}


class WeightStore:
    """Versioned weight files in one folder; the highest version is the current one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("weights-*.json")) if self.folder.is_dir() else []

    def latest(self) -> TrainedWeights | None:
        files = self._files()
        if not files:
            return None
        return TrainedWeights(**json.loads(files[-1].read_text(encoding="utf-8")))

    def latest_version(self) -> int:
        files = self._files()
        return int(files[-1].stem.split("-")[1]) if files else 0

    def save(
        self, weights: Mapping[str, float], metrics: Mapping[str, float], examples: int
    ) -> TrainedWeights:
        version = self.latest_version() + 1
        trained = TrainedWeights(version, dict(weights), time.time(), examples, dict(metrics))
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"weights-{version:04d}.json"
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(trained), indent=2), encoding="utf-8")
        os.replace(partial, target)  # readers never see half a file
        return trained

    def close(self) -> None:
        """Nothing to close: files are opened per read."""


class SharedWeightStore:
    """Versioned weights as rows of the database every worker shares (`database_url`), so
    a version trained anywhere reaches them all; the same calls as `WeightStore`."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS scorer_weights"
        " (version INTEGER PRIMARY KEY, data TEXT NOT NULL)"
    )

    def __init__(self, url: str) -> None:
        self._db = open_database(url)
        self._db.migrate("scorer_weights", [self.SCHEMA])

    def latest(self) -> TrainedWeights | None:
        row = self._db.execute(
            "SELECT data FROM scorer_weights ORDER BY version DESC LIMIT 1"
        ).fetchone()
        return TrainedWeights(**json.loads(row[0])) if row else None

    def latest_version(self) -> int:
        return self._db.execute("SELECT max(version) FROM scorer_weights").fetchone()[0] or 0

    def save(
        self, weights: Mapping[str, float], metrics: Mapping[str, float], examples: int
    ) -> TrainedWeights:
        with self._db:
            version = self.latest_version() + 1
            trained = TrainedWeights(version, dict(weights), time.time(), examples, dict(metrics))
            self._db.execute(
                "INSERT INTO scorer_weights (version, data) VALUES (?, ?)",
                (version, json.dumps(asdict(trained))),
            )
        return trained

    def close(self) -> None:
        self._db.close()


def open_weight_store(
    folder: Path, database_url: str | None = None
) -> WeightStore | SharedWeightStore:
    """The trained weights: the shared database's when there is one, else `folder`'s files."""
    return SharedWeightStore(database_url) if database_url else WeightStore(folder)
