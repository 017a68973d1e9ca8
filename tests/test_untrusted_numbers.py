"""Numbers from outside (filter bounds, catalog rows) that are not finite: `inf`, `-inf`,
`nan`, JSON's `Infinity`/`NaN`, `1e999` (read as inf) and integers too large for a float.
Each is refused with its value, a bad row by its line, and nothing else is lost."""

from __future__ import annotations

import json

import pytest

from retrieval.filters import ProductFilters
from tests.test_ingest import GOOD_ROWS, HEADER, stored_ids, write

CHAT = {"Authorization": "Bearer chat-key"}
ADMIN = {"Authorization": "Bearer admin-key"}
INF = float("inf")
NAN = float("nan")


def test_an_infinite_price_filter_is_refused_with_its_value():
    with pytest.raises(ValueError) as error:
        ProductFilters(price_max=INF)

    assert str(error.value) == "price_max must be a finite number, but got inf"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("price_min", INF, "inf"),
        ("price_min", -INF, "-inf"),
        ("price_max", NAN, "nan"),
        ("price_max", 10**400, "an integer too large for a float"),
        ("rating_min", NAN, "nan"),
        ("rating_min", INF, "inf"),
    ],
)
def test_a_non_finite_filter_bound_is_refused_with_its_name_and_value(name, value, shown):
    with pytest.raises(ValueError) as error:
        ProductFilters(**{name: value})

    assert str(error.value) == f"{name} must be a finite number, but got {shown}"


def test_finite_filter_bounds_still_filter(catalog, tmp_path):
    catalog.ingest(write(tmp_path, "p.csv", HEADER + "".join(GOOD_ROWS)))

    hits = catalog.search("", k=10, filters=ProductFilters(price_max=100.0, rating_min=4.5))

    assert {hit.product.id for hit in hits} == {"A1", "A3"}


@pytest.fixture
def client(settings, embedder, tiny_lm):
    """The real app over the REST tests' small catalog, with keys."""
    from tests.test_api import make_client

    with make_client(
        settings, embedder, tiny_lm, chat_keys=["chat-key"], admin_keys=["admin-key"]
    ) as opened:
        yield opened


@pytest.mark.parametrize(
    "query",
    ["price_max=inf", "price_min=-inf", "price_max=nan", "price_min=Infinity", "rating_min=nan"],
)
def test_a_search_with_an_infinite_or_nan_bound_is_a_422_naming_it(client, query):
    response = client.get(f"/v1/products/search?q=shoes&{query}", headers=CHAT)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert query.split("=")[0] in detail and "finite" in detail


JSONL_ROWS = [
    json.dumps({"id": "G1", "title": "Trail Shoe", "price": 89.5, "rating": 4.5}),
    '{"id": "N1", "title": "Infinite Boot", "price": Infinity}',
    '{"id": "N2", "title": "NaN Lamp", "price": 12, "rating": NaN}',
    '{"id": "N3", "title": "Huge Kettle", "price": 1e999}',
    '{"id": "N4", "title": "Popular Mug", "price": 9, "review_count": Infinity}',
    '{"id": "N5", "title": "Odd Mug", "price": 9, "review_count": NaN}',
    '{"id": "N6", "title": "Minus Pan", "price": -Infinity}',
    '{"id": "N7", "title": "Wide Rug", "price": 1' + "0" * 400 + "}",
    '{"id": "N8", "title": "Busy Mat", "review_count": 1' + "0" * 400 + "}",
    json.dumps({"id": "G2", "title": "Rain Jacket", "price": 120, "review_count": 31}),
]
JSONL_REJECTED = [
    "line 2 (id N1): price: expected a finite number, got inf",
    "line 3 (id N2): rating: expected a finite number, got nan",
    "line 4 (id N3): price: expected a finite number, got inf",
    "line 5 (id N4): review_count: expected a finite whole number, got inf",
    "line 6 (id N5): review_count: expected a finite whole number, got nan",
    "line 7 (id N6): price: expected a finite number, got -inf",
    "line 8 (id N7): price: expected a finite number, got an integer too large for a float",
    "line 9 (id N8): review_count: expected a finite whole number, got an integer too large "
    "for a float",
]


def test_catalog_rows_with_infinite_or_nan_numbers_are_rejected_and_the_rest_ingested(
    catalog, tmp_path
):
    report = catalog.ingest(write(tmp_path, "p.jsonl", "\n".join(JSONL_ROWS) + "\n"))

    assert [str(issue) for issue in report.rejected] == JSONL_REJECTED
    assert (report.added, report.updated) == (2, 0)
    assert stored_ids(catalog) == {"G1", "G2"}
    assert set(catalog.vectors.ids()) == {"G1", "G2"}


def test_csv_rows_with_inf_nan_or_1e999_are_rejected_and_the_rest_ingested(catalog, tmp_path):
    header = "id,title,price,rating,review_count\n"
    rows = [
        "G1,Trail Shoe,89.5,4.5,12\n",
        "C1,Inf Boot,inf,4.0,3\n",
        "C2,NaN Lamp,12,NaN,3\n",
        "C3,Huge Kettle,1e999,4.0,3\n",
        "C4,Popular Mug,9,4.0,inf\n",
        "C5,Odd Mug,9,4.0,nan\n",
        "C6,Big Mat,9,4.0,1e999\n",
        "C7,Minus Pan,-Infinity,4.0,3\n",
        'G2,Rain Jacket,$120,4.1,"1,234"\n',
    ]
    report = catalog.ingest(write(tmp_path, "p.csv", header + "".join(rows)))

    assert [str(issue) for issue in report.rejected] == [
        "line 3 (id C1): price: expected a finite number, got inf",
        "line 4 (id C2): rating: expected a finite number, got nan",
        "line 5 (id C3): price: expected a finite number, got inf",
        "line 6 (id C4): review_count: expected a finite whole number, got inf",
        "line 7 (id C5): review_count: expected a finite whole number, got nan",
        "line 8 (id C6): review_count: expected a finite whole number, got inf",
        "line 9 (id C7): price: expected a finite number, got -inf",
    ]
    assert stored_ids(catalog) == {"G1", "G2"}
    assert catalog.records.get_many(["G2"])["G2"].review_count == 1234


def test_json_a_parser_cannot_read_rejects_its_line_and_keeps_the_rest(catalog, tmp_path):
    rows = [
        json.dumps({"id": "G1", "title": "Trail Shoe", "price": 10}),
        '{"id": "D1", "title": "Digits", "price": 1' + "0" * 5000 + "}",
        "[" * 100_000,
        json.dumps({"id": "D3", "title": "Deep", "attributes": "[" * 100_000}),
        json.dumps({"id": "G2", "title": "Rain Jacket", "price": 120}),
    ]
    report = catalog.ingest(write(tmp_path, "p.jsonl", "\n".join(rows) + "\n"))

    assert [str(issue) for issue in report.rejected] == [
        "line 2: not valid JSON (a number with too many digits)",
        "line 3: not valid JSON (nested too deeply)",
        "line 4 (id D3): attributes: attributes must be a JSON object",
    ]
    assert stored_ids(catalog) == {"G1", "G2"}


def test_an_upload_with_infinite_numbers_reports_them_and_stores_the_rest(client):
    body = "\n".join(JSONL_ROWS).encode()
    response = client.post(
        "/v1/catalog", content=body, headers={**ADMIN, "Content-Type": "application/x-ndjson"}
    )

    assert response.status_code == 200
    document = response.json()
    assert (document["added"], document["rejected"]) == (2, len(JSONL_REJECTED))
    assert [row["line"] for row in document["rejected_rows"]] == list(range(2, 10))
    search = client.get("/v1/products/search?q=trail shoe&k=20", headers=CHAT).json()
    assert "G1" in [item["id"] for item in search["products"]]
