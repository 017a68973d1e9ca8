"""The generated demo store: catalog, policy documents and the labelled retrieval eval set."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import pytest

from retrieval.catalog import Product, product_from_row
from retrieval.demo.catalog import generate_catalog, write_catalog_jsonl
from retrieval.demo.product_types import PRODUCT_TYPES, product_type
from retrieval.demo.queries import (
    MAX_GRADE2,
    MAX_RELEVANT,
    Need,
    generate_eval_set,
    grade,
    write_eval_set,
)
from retrieval.demo.shopper_words import TYPE_GROUPS, VAGUE_NEEDS, misspell
from retrieval.demo.traits import FEATURES, USES
from retrieval.policies import load_policy_docs, split_policy

SIZED_CATEGORIES = {"Shoes", "Clothing", "Outerwear"}
PRICE_WORDS = re.compile(r"\$\d+|\b(under|below|between|max|budget)\b.*\d|\d+ (dollars|bucks)")


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return generate_catalog(1200, seed=0)


@pytest.fixture(scope="module")
def eval_set(catalog):
    return generate_eval_set(catalog, n_queries=300, seed=0)


# Catalog ----------------------------------------------------------------------------------


def test_catalog_is_deterministic_per_seed():
    assert generate_catalog(200, seed=7) == generate_catalog(200, seed=7)
    assert generate_catalog(200, seed=7) != generate_catalog(200, seed=8)


def test_a_bigger_catalog_starts_with_the_smaller_one():
    assert generate_catalog(30, seed=2) == generate_catalog(90, seed=2)[:30]


def test_catalog_has_many_categories_and_valid_products(catalog):
    assert len(catalog) == 1200
    assert [p.id for p in catalog[:2]] == ["P00001", "P00002"]
    assert len({p.id for p in catalog}) == len(catalog)
    assert len({p.category for p in catalog}) >= 12
    assert len({p.attributes["type"] for p in catalog}) >= 40
    for product in catalog:
        assert Product.model_validate(product.model_dump()) == product
        assert product.currency == "USD"
        assert product.price is not None and product.price > 0
        assert 1.0 <= product.rating <= 5.0 and round(product.rating, 1) == product.rating
        assert product.review_count >= 1
        assert product.image_url == f"/images/{product.id}.svg"
        assert product.brand and product.title.startswith(product.brand)


def test_some_products_have_few_reviews_and_about_eight_percent_are_out_of_stock(catalog):
    out_of_stock = sum(not p.in_stock for p in catalog) / len(catalog)
    assert 0.05 <= out_of_stock <= 0.12
    assert sum(p.review_count < 10 for p in catalog) >= 50


def test_clothing_and_shoes_have_sizes_and_single_lowercase_colours(catalog):
    for product in catalog:
        if product.category in SIZED_CATEGORIES:
            assert len(product.sizes) >= 3, product
            assert product.attributes["gender"] in {"men", "women", "unisex"}
        colour = product.attributes.get("colour")
        if colour is not None:
            assert colour == colour.lower() and "," not in colour
    assert sum("material" in p.attributes for p in catalog) > 1000


def test_descriptions_have_two_to_four_sentences_and_vary(catalog):
    for product in catalog:
        sentences = re.split(r"(?<=[.!?])\s+", product.description.strip())
        assert 2 <= len(sentences) <= 4, product.description
    assert len({p.description for p in catalog}) > 1150


def test_shoe_titles_read_like_a_shop(catalog):
    boot = next(p for p in catalog if p.attributes["type"] == "hiking boot")
    assert "Hiking Boot – " in boot.title


def test_write_catalog_jsonl_round_trips(tmp_path, catalog):
    path = tmp_path / "nested" / "catalog.jsonl"
    write_catalog_jsonl(catalog[:25], path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [product_from_row(row)[0] for row in rows] == catalog[:25]


# Policies ---------------------------------------------------------------------------------


def test_demo_policies_cover_the_required_topics():
    docs = load_policy_docs()
    names = {d.doc for d in docs}
    assert {"shipping", "returns", "refunds", "payment", "warranty", "accounts"} <= names
    assert len({d.id for d in docs}) == len(docs)
    for doc in docs:
        assert doc.text.strip() and doc.section and doc.title
        assert doc.id == f"{doc.doc}#{doc.id.split('#')[1]}"
    for name in names:
        assert sum(d.doc == name and d.section != "Overview" for d in docs) >= 4


def test_policy_sections_hold_the_facts():
    docs = {d.id: d for d in load_policy_docs()}
    window = docs["returns#return-window"]
    assert (window.title, window.section) == ("Returns Policy", "Return window")
    assert "30 days" in window.text
    assert "$50" in docs["shipping#delivery-options-and-costs"].text


def test_operators_can_point_at_their_own_policies(tmp_path):
    (tmp_path / "faq.md").write_text(
        "# Store FAQ\nIntro line.\n\n## Opening hours\nMon-Fri 9-5.\n\n## Empty\n\n"
        "## Don't panic\n```\n## not a heading\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "notes.txt").write_text("## ignored", encoding="utf-8")
    docs = load_policy_docs(tmp_path)
    assert [d.id for d in docs] == ["faq#overview", "faq#opening-hours", "faq#dont-panic"]
    assert docs[1].title == "Store FAQ" and docs[1].text == "Mon-Fri 9-5."
    assert "## not a heading" in docs[2].text


def test_a_sections_questions_and_notes_are_never_part_of_its_text():
    docs = split_policy(
        "faq",
        "# FAQ\n<!-- questions: can i send it back?\n  do you take returns -->\nIntro.\n"
        "## Hours\n<!-- note: ask Sam -->\nMon-Fri 9-5. <!-- not Sundays? -->\n",
    )
    assert [(d.section, d.text, d.questions) for d in docs] == [
        ("Overview", "Intro.", ("can i send it back?", "do you take returns")),
        ("Hours", "Mon-Fri 9-5.", ()),
    ]


def test_missing_policy_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy_docs(tmp_path / "nope")


def test_split_policy_numbers_repeated_headings():
    docs = split_policy("x", "## Fees\na\n## Fees\nb\n")
    assert [d.id for d in docs] == ["x#fees", "x#fees-2"]


# Judging ----------------------------------------------------------------------------------


def _shoe(type_key: str, colour: str, price: float, **extra) -> Product:
    attributes = {"type": type_key, "colour": colour, "size": "8, 9, 10", "gender": "men"}
    return Product(
        id="X1",
        title="shoe",
        brand="Trailblaze",
        price=price,
        rating=4.2,
        attributes=attributes | extra,
    )


def test_grade_counts_the_parts_of_a_need_a_product_misses():
    need = Need(
        types=("running shoe",), substitutes=("sneaker",), colour="red", max_price=100.0, size="10"
    )
    assert grade(need, _shoe("running shoe", "red", 90)) == 2
    assert grade(need, _shoe("running shoe", "blue", 90)) == 1
    assert grade(need, _shoe("running shoe", "red", 115)) == 1  # within 20% over budget
    assert grade(need, _shoe("running shoe", "red", 130)) == 0  # far over budget
    assert grade(need, _shoe("sneaker", "red", 90)) == 1
    assert grade(need, _shoe("sneaker", "blue", 90)) == 0
    assert grade(need, _shoe("hiking boot", "red", 90)) == 0
    assert grade(need, _shoe("running shoe", "red", 90, size="11, 12")) == 1
    assert (
        grade(
            Need(types=("running shoe",), gender="women"),
            _shoe("running shoe", "red", 90, gender="unisex"),
        )
        == 2
    )
    assert (
        grade(
            Need(types=("running shoe",), tags=("reflective",)),
            _shoe("running shoe", "red", 90, features="cushioned"),
        )
        == 1
    )


def test_vague_needs_and_groups_use_known_types_tags_and_specs():
    known = {t.key for t in PRODUCT_TYPES}
    for need in VAGUE_NEEDS:
        assert set(need.types + need.substitutes) <= known, need
        assert all(tag in FEATURES or tag in USES for tag in need.tags), need
        if need.spec:
            key, values = need.spec
            specs = [product_type(key_type).spec for key_type in need.types]
            assert all(spec and spec.key == key for spec in specs), need
            assert set(values) <= {v for spec in specs for v in spec.values}, need
    for _words, types, substitutes in TYPE_GROUPS:
        assert set(types + substitutes) <= known


# Eval set ---------------------------------------------------------------------------------


def test_eval_set_is_deterministic(catalog, eval_set):
    assert generate_eval_set(catalog, n_queries=300, seed=0) == eval_set


def test_every_query_has_a_full_match_and_a_sensible_number_of_labels(catalog, eval_set):
    queries, qrels = eval_set
    assert len(queries) == 300
    assert [q["id"] for q in queries[:2]] == ["q001", "q002"]
    assert len({q["text"].lower() for q in queries}) == len(queries)
    ids = {p.id for p in catalog}
    labels: dict[str, list[int]] = defaultdict(list)
    for query_id, product_id, g in qrels:
        assert product_id in ids and g in (1, 2)
        labels[query_id].append(g)
    assert len(set(qrels)) == len(qrels)
    for query in queries:
        grades = labels[query["id"]]
        assert 1 <= grades.count(2) <= MAX_GRADE2, query
        assert len(grades) <= MAX_RELEVANT, query


def test_eval_set_mixes_the_ways_shoppers_ask(eval_set):
    queries, _ = eval_set
    kinds = Counter(q["kind"] for q in queries)
    assert kinds["vague"] >= 45 and kinds["plain"] >= 30 and kinds["misspelled"] >= 25
    assert kinds["combo"] >= 15
    assert sum(bool(PRICE_WORDS.search(q["text"])) for q in queries) >= 40
    assert sum(q["text"] == q["text"].lower() for q in queries) >= 0.8 * len(queries)


def test_misspelled_queries_contain_words_the_clean_ones_never_use(catalog, eval_set):
    queries, _ = eval_set
    vocabulary = {w for q in queries if q["kind"] != "misspelled" for w in q["text"].split()}
    for product in catalog:
        vocabulary.update(product.title.lower().split() + product.description.lower().split())
    misspelled = [q["text"] for q in queries if q["kind"] == "misspelled"]
    unknown = [t for t in misspelled if any(w not in vocabulary for w in t.lower().split())]
    assert len(unknown) >= 0.9 * len(misspelled)


def test_misspell_changes_a_long_enough_word():
    import random

    rng = random.Random(0)
    assert misspell("wireless headphones", rng) != "wireless headphones"
    assert misspell("a b", rng) == "a b"


def test_price_constrained_labels_respect_the_budget(catalog, eval_set):
    queries, qrels = eval_set
    prices = {p.id: p.price for p in catalog}
    full = defaultdict(list)
    for query_id, product_id, g in qrels:
        if g == 2:
            full[query_id].append(prices[product_id])
    checked = 0
    for query in queries:
        match = re.fullmatch(r"(?:.* )?(?:under|less than|max|no more than) \$(\d+)", query["text"])
        if match:
            assert max(full[query["id"]]) <= float(match.group(1)), query
            checked += 1
    assert checked >= 5


def test_write_eval_set_writes_the_documented_files(tmp_path):
    write_eval_set(tmp_path, n_products=300, n_queries=40, seed=1)
    catalog_lines = (tmp_path / "catalog.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(catalog_lines) == 300
    queries = [json.loads(line) for line in (tmp_path / "queries.jsonl").open()]
    assert len(queries) == 40 and set(queries[0]) == {"id", "text"}
    rows = (tmp_path / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "query_id\tproduct_id\tgrade"
    assert {row.split("\t")[0] for row in rows[1:]} == {q["id"] for q in queries}
