"""Ranking experiments: shoppers split into stable buckets between ranking policies (arms,
each an exploration strength for the scorer's Thompson sampling), and each arm's
click-through with a confidence interval, so a store learns whether exploring pays on its
own traffic.

    >>> arms = {"greedy": 0.0, "thompson": 1.0}
    >>> ranking_arm(arms, "shopper-42") == ranking_arm(arms, "shopper-42")
    True
    >>> ranking_arm({}, "shopper-42") is None
    True
    >>> wilson_interval(30, 1000)
    (0.0211, 0.0425)

A shopper's arm depends only on their id (or, for an anonymous shopper, the session's) and
the arm names: the same shopper lands in the same arm on every visit and every worker, and
adding or renaming an arm reshuffles everyone, as a new experiment should.
"""

from __future__ import annotations

import hashlib
import math
import re

Z_95 = 1.959964  # the normal quantile of a two-sided 95% interval
ARM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")  # what an arm may be called


def ranking_arm(arms: dict[str, float], who: str | None) -> str | None:
    """The arm `who` (a shopper or session id) is in; None with no experiment or no id."""
    if not arms or not who:
        return None
    names = sorted(arms)
    digest = hashlib.sha256(f"{'|'.join(names)}:{who}".encode()).digest()
    return names[int.from_bytes(digest[:8], "big") % len(names)]


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a rate (95% by default), rounded to 4 places; (0, 0)
    for no trials. Impressions shown together are not independent trials, so read it as
    a lower bound on the uncertainty."""
    if trials <= 0:
        return 0.0, 0.0
    rate = successes / trials
    centre = rate + z * z / (2 * trials)
    spread = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return round(max(0.0, (centre - spread) / scale), 4), round(
        min(1.0, (centre + spread) / scale), 4
    )
