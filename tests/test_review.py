"""Conversation review: an operator finds the bot's turns by text, intent and route, marks
one wrong with the intent it should have had (or good), and the next training set built
from the log (`shopbot finetune build`) carries the correction."""

from __future__ import annotations

import pytest

from finetune.dataset import logged_turns
from tests.test_admin import ADMIN, CHAT, say


@pytest.fixture
def client(staffed_client):
    return staffed_client


def turns(client, **filters):
    response = client.get("/v1/admin/turns", params=filters, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["turns"]


def test_an_operator_finds_a_turn_corrects_it_and_the_next_training_set_has_it(client, settings):
    say(client, "red running shoes")
    say(client, "blorp the fizzwidget now")  # parsed unsure: the bot asked to clarify
    say(client, "thanks, that helps", session="shop-2")

    assert [t["message"] for t in turns(client)] == [
        "thanks, that helps", "blorp the fizzwidget now", "red running shoes",
    ]  # fmt: skip
    [unclear] = turns(client, route="clarify")
    assert (unclear["intent"], unclear["review"]) == ("complaint", None)
    [found] = turns(client, q="FIZZ")  # text, any case
    assert found["id"] == unclear["id"]
    [search] = turns(client, intent="search_products")
    assert search["slots"] == {"query": "running shoes", "colour": "red"} and search["shown"]
    assert turns(client, q="50%_off") == []  # wildcards are plain text
    assert client.get("/v1/admin/turns", headers=CHAT).status_code == 403

    review = f"/v1/admin/turns/{unclear['id']}/review"
    wrong = {"verdict": "wrong", "intent": "search_products"}
    assert client.post(review, json=wrong, headers=ADMIN).status_code == 200
    assert client.post(f"/v1/admin/turns/{search['id']}/review", json={"verdict": "good"},
                       headers=ADMIN).status_code == 200  # fmt: skip
    [reviewed] = turns(client, route="clarify")
    assert reviewed["review"]["verdict"] == "wrong"
    assert reviewed["review"]["intent"] == "search_products"

    bad = [{"verdict": "meh"}, {"verdict": "wrong"}, {"verdict": "wrong", "intent": "weather"}]
    for body in bad:
        assert client.post(review, json=body, headers=ADMIN).status_code == 422, body
    assert client.post("/v1/admin/turns/999999/review", json={"verdict": "good"},
                       headers=ADMIN).status_code == 404  # fmt: skip

    rows = logged_turns(settings.sessions_path, settings.events_path)
    assert {"text": "blorp the fizzwidget now", "intent": "search_products", "slots": {}} in rows
    assert {
        "text": "red running shoes",
        "intent": "search_products",
        "slots": {"query": "running shoes", "colour": "red"},
    } in rows
    assert all(row["text"] != "thanks, that helps" for row in rows)  # not reviewed, not liked
