"""Ranking experiments: shoppers are split between ranking arms (exploration strengths) in
stable buckets, each impression records the arm that ranked it, and the metrics give each
arm's click-through with its confidence interval."""

from __future__ import annotations

from collections import Counter

import pytest

from retrieval.experiments import ranking_arm, wilson_interval
from tests.test_admin import ADMIN, CHAT
from tests.test_api import make_client

ARMS = {"greedy": 0.0, "thompson": 1.0}


def test_a_shopper_stays_in_one_arm_and_the_arms_split_shoppers_evenly():
    shoppers = [f"shopper-{n}" for n in range(2000)]
    first = [ranking_arm(ARMS, who) for who in shoppers]
    assert first == [ranking_arm(dict(reversed(ARMS.items())), who) for who in shoppers]
    split = Counter(first)
    assert set(split) == set(ARMS) and min(split.values()) > 900
    assert ranking_arm({}, "shopper-1") is None and ranking_arm(ARMS, None) is None
    bigger = {**ARMS, "strong": 2.0}
    moved = sum(a != ranking_arm(bigger, w) for a, w in zip(first, shoppers, strict=True))
    assert moved > 500  # a new experiment reshuffles


def test_the_wilson_interval_holds_the_rate_and_narrows_with_more_trials():
    assert wilson_interval(0, 0) == (0.0, 0.0)
    low, high = wilson_interval(30, 1000)
    assert low < 0.03 < high and (low, high) == (0.0211, 0.0425)
    assert wilson_interval(300, 10000)[1] - wilson_interval(300, 10000)[0] < high - low
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0


@pytest.fixture
def client(settings, embedder, tiny_lm):
    with make_client(
        settings, embedder, tiny_lm, chat_keys=["chat-key"], admin_keys=["admin-key"],
        ranking_arms=ARMS,
    ) as client:  # fmt: skip
        yield client


def test_each_arm_s_click_through_is_counted_from_its_own_shoppers(client):
    clicks, shown = Counter(), Counter()
    for n in range(12):
        shopper, session = f"shopper-{n}", f"sess-{n}"
        params = {"q": "running shoes", "k": 3, "session_id": session, "shopper_id": shopper}
        products = client.get("/v1/products/search", params=params, headers=CHAT).json()
        arm = ranking_arm(ARMS, shopper)
        shown[arm] += len(products["products"])
        if n % 3 == 0:  # a third of the shoppers click their first product
            event = {"type": "click", "product_id": products["products"][0]["id"],
                     "session_id": session, "shopper_id": shopper}  # fmt: skip
            assert client.post("/v1/feedback", json=event, headers=CHAT).status_code == 201
            clicks[arm] += 1

    experiment = client.get("/v1/admin/metrics", headers=ADMIN).json()["experiment"]
    assert [row["arm"] for row in experiment] == ["greedy", "thompson"]
    for row in experiment:
        assert row["exploration"] == ARMS[row["arm"]]
        assert (row["impressions"], row["clicks"]) == (shown[row["arm"]], clicks[row["arm"]])
        low, high = wilson_interval(row["clicks"], row["impressions"])
        assert (row["ctr_low"], row["ctr_high"]) == (low, high) and low <= row["ctr"] <= high
