"""Labelled shopper turns for intent/slot SFT and eval: shape, mix, slot values, splits."""

from __future__ import annotations

import doctest
import re
from collections import Counter

import pytest

import finetune.shopping_requests as shopping_requests
from bot.nlu.schema import INTENTS, SORTS, clean_slots
from finetune.shopping_requests import generate_shopping_turns, merge_slots
from retrieval.demo.catalog import generate_catalog

SHOPPING = ("search_products", "product_details", "compare_products")
SMALL_TALK = ("greeting", "goodbye", "thanks")


@pytest.fixture(scope="module")
def catalog():
    return generate_catalog(200)


@pytest.fixture(scope="module")
def rows(catalog):
    return generate_shopping_turns(catalog, 600, seed=0)


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text.lower()) is not None


# Shape and determinism ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 250])
def test_exactly_n_rows(catalog, n):
    assert len(generate_shopping_turns(catalog, n, seed=2)) == n


def test_same_arguments_same_rows_and_seeds_differ(catalog):
    first = generate_shopping_turns(catalog, 200, seed=3)
    assert first == generate_shopping_turns(catalog, 200, seed=3)
    assert first != generate_shopping_turns(catalog, 200, seed=4)
    assert first != generate_shopping_turns(catalog, 200, seed=3, split="eval")


def test_rows_have_the_documented_fields(rows):
    for row in rows:
        assert list(row) == ["text", "intent", "slots", "previous", "state"]
        assert isinstance(row["text"], str) and row["text"].strip()
        assert row["intent"] in SHOPPING + SMALL_TALK
        if row["previous"] is not None:
            assert set(row["previous"]) == {"intent", "slots"}
            assert row["previous"]["intent"] in INTENTS


def test_bad_arguments_raise(catalog):
    with pytest.raises(ValueError, match="split must be one of"):
        generate_shopping_turns(catalog, 5, split="test")
    with pytest.raises(ValueError, match="n must be >= 0, but got -1"):
        generate_shopping_turns(catalog, -1)
    with pytest.raises(ValueError, match="'type'"):
        generate_shopping_turns([p.model_copy(update={"attributes": {}}) for p in catalog], 5)


# Mix ----------------------------------------------------------------------------------------


def test_intent_mix(catalog):
    rows = generate_shopping_turns(catalog, 1000, seed=1)
    intents = Counter(row["intent"] for row in rows)
    assert set(intents) == set(SHOPPING + SMALL_TALK)
    first_searches = sum(r["intent"] == "search_products" and not r["previous"] for r in rows)
    follow_ups = sum(r["intent"] == "search_products" and bool(r["previous"]) for r in rows)
    assert 500 <= first_searches <= 600
    assert 200 <= follow_ups <= 300
    assert 80 <= intents["product_details"] + intents["compare_products"] <= 120
    assert 80 <= sum(intents[name] for name in SMALL_TALK) <= 120


def test_first_searches_name_zero_to_several_constraints(rows):
    counts = Counter(
        len(set(row["slots"]) - {"query"})
        for row in rows
        if row["intent"] == "search_products" and row["previous"] is None
    )
    assert {0, 1, 2, 3, 4} <= set(counts)
    for name in ("category", "brand", "colour", "size", "material", "price_min", "price_max"):
        assert any(name in row["slots"] and not row["previous"] for row in rows), name
    assert {row["slots"].get("sort") for row in rows} >= set(SORTS)


# Slots --------------------------------------------------------------------------------------


def test_slots_are_clean_catalog_values_the_text_states(catalog, rows):
    values = {
        "category": {p.category.lower() for p in catalog},
        "brand": {p.brand.lower() for p in catalog},
        "colour": {c for p in catalog for c in p.colours},
        "size": {s for p in catalog for s in p.sizes},
        "material": {p.attributes.get("material", "").lower() for p in catalog} - {""},
    }
    for row in rows:
        slots, text = row["slots"], row["text"]
        assert clean_slots(slots) == slots, row
        for name, allowed in values.items():
            if name in slots:
                assert slots[name] in allowed, row
                shown = slots[name].replace("&", "and") if name == "category" else slots[name]
                assert _mentions(text, slots[name]) or _mentions(text, shown), row
        numbers = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)}
        for name in ("price_min", "price_max"):
            if name in slots:
                assert slots[name] in numbers, row


def test_slots_fit_the_intent(rows):
    for row in rows:
        slots = row["slots"]
        if row["intent"] in SMALL_TALK:
            assert slots == {}
        elif row["intent"] == "compare_products":
            assert len(slots["product_refs"]) == 2
        elif row["intent"] == "search_products":
            assert slots and "product_refs" not in slots
        assert "product_refs" not in row["state"] or "product_refs" in slots


def test_query_is_written_in_the_text_except_for_typos(rows):
    with_query = [row for row in rows if "query" in row["slots"]]
    verbatim = sum(row["slots"]["query"] in row["text"].lower() for row in with_query)
    assert 0.8 * len(with_query) <= verbatim < len(with_query)


def test_some_messages_have_typos(catalog):
    rows = generate_shopping_turns(catalog, 1500, seed=5)
    texts = [re.findall(r"[a-z']+", row["text"].lower()) for row in rows]
    counts = Counter(word for words in texts for word in words)
    common = [word for word, count in counts.items() if count >= 5]
    typos = {w for w, c in counts.items() if c == 1 and any(_one_edit(w, k) for k in common)}
    with_typo = sum(bool(typos & set(words)) for words in texts)
    assert 0.05 * len(rows) <= with_typo <= 0.25 * len(rows)


def _one_edit(typo: str, word: str) -> bool:
    """A letter dropped, doubled, swapped with its neighbour or replaced."""
    if len(typo) == len(word):
        diffs = [i for i, (a, b) in enumerate(zip(typo, word, strict=True)) if a != b]
        swapped = len(diffs) == 2 and diffs[1] == diffs[0] + 1 and typo[diffs[0]] == word[diffs[1]]
        return len(diffs) == 1 or swapped
    short, long = sorted((typo, word), key=len)
    return len(long) == len(short) + 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


# Conversations ------------------------------------------------------------------------------


def test_state_is_the_merge_of_previous_and_new_slots(rows):
    follow_ups = [row for row in rows if row["previous"] is not None]
    assert len(follow_ups) >= 0.25 * len(rows)
    for row in rows:
        if row["previous"] is None:
            assert row["state"] == row["slots"]
        else:
            assert row["state"] == merge_slots(row["previous"]["slots"], row["slots"])
            assert clean_slots(row["previous"]["slots"]) == row["previous"]["slots"]


def test_follow_ups_refine_and_switch(rows):
    follow_ups = [r for r in rows if r["previous"] and r["intent"] == "search_products"]
    refined = [r for r in follow_ups if not {"query", "category"} & set(r["slots"])]
    switched = [r for r in follow_ups if r["state"] == r["slots"]]
    assert refined and switched
    assert any(r["slots"] == {"sort": "cheapest"} for r in refined)
    for row in refined:
        assert len(row["state"]) >= len(row["slots"])


# Splits -------------------------------------------------------------------------------------


def test_eval_phrasings_are_not_seen_in_train(catalog):
    def texts(split: str) -> set[str]:
        return {
            r["text"].lower()
            for s in (0, 1)
            for r in generate_shopping_turns(catalog, 800, s, split)
        }

    train, held_out = texts("train"), texts("eval")
    assert not train & held_out
    # the small talk has no values in it, so its phrasings alone tell the splits apart
    assert not {t for t in train if len(t) < 12} & {t for t in held_out if len(t) < 12}


def test_both_splits_draw_from_the_same_catalog(catalog):
    brands = {
        name: {r["slots"].get("brand") for r in generate_shopping_turns(catalog, 800, 0, name)}
        for name in ("train", "eval")
    }
    assert len(brands["train"] & brands["eval"]) >= 10


# merge_slots --------------------------------------------------------------------------------


def test_merge_carries_text_slots_prices_and_sort_but_not_references():
    state = {
        "query": "hiking boots",
        "brand": "trailblaze",
        "size": "10",
        "price_max": 150.0,
        "sort": "best_rated",
        "product_refs": [2],
        "order_id": "A-1001",
        "email": "a@b.co",
    }
    assert merge_slots(state, {"colour": "brown", "sort": "cheapest"}) == {
        "query": "hiking boots",
        "brand": "trailblaze",
        "colour": "brown",
        "size": "10",
        "price_max": 150.0,
        "sort": "cheapest",
    }
    assert merge_slots(state, {"product_refs": [1, 3]})["product_refs"] == [1, 3]


def test_merge_starts_afresh_for_another_kind_of_product():
    state = {"query": "hiking boots", "category": "shoes", "colour": "brown", "price_max": 150.0}
    assert merge_slots(state, {"query": "tent"}) == {"query": "tent"}
    assert merge_slots(state, {"query": "HIKING BOOTS", "size": "9"})["colour"] == "brown"
    assert merge_slots(state, {"category": "kitchen", "brand": "whirlo"}) == {
        "category": "kitchen",
        "brand": "whirlo",
    }
    assert merge_slots({"category": "shoes"}, {"query": "sneakers"}) == {
        "query": "sneakers",
        "category": "shoes",
    }


def test_merge_drops_a_carried_price_bound_that_contradicts_a_new_one():
    assert merge_slots({"price_min": 100.0, "price_max": 200.0}, {"price_max": 50.0}) == {
        "price_max": 50.0
    }
    assert merge_slots({"price_max": 50.0}, {"price_min": 40.0}) == {
        "price_min": 40.0,
        "price_max": 50.0,
    }


def test_docstring_examples():
    assert doctest.testmod(shopping_requests).failed == 0
