"""The shopbot command line, end to end with the real default embedding model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli import main

pytestmark = pytest.mark.integration

CATALOG = [
    {
        "id": "1",
        "title": "Stride Road Running Shoe",
        "category": "Shoes",
        "price": 90,
        "attributes": {"colour": "red"},
    },
    {"id": "2", "title": "Drift Waterproof Rain Jacket", "category": "Jackets", "price": 120},
    {"id": "3", "title": "Brewster Espresso Machine", "category": "Kitchen", "price": 249},
    {"id": "4", "title": "Peak Leather Hiking Boot", "category": "Shoes", "price": 160},
]


def run(*args: str):
    result = CliRunner().invoke(main, [*args, "--data-dir", "data"], catch_exceptions=False)
    return result


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in CATALOG) + "\n")
    return path


def test_ingest_then_search_as_json(catalog_file):
    ingest = run("ingest", str(catalog_file), "--json")
    assert ingest.exit_code == 0
    assert json.loads(ingest.stdout)["added"] == 4

    search = run("search", "shoes for jogging", "-k", "2", "--json")
    assert search.exit_code == 0
    products = json.loads(search.stdout)["products"]
    assert products[0]["id"] == "1"
    assert set(products[0]) >= {"id", "title", "price", "score"}

    filtered = run("search", "shoes", "--price-max", "100", "--json")
    assert [p["id"] for p in json.loads(filtered.stdout)["products"]] == ["1"]


def test_ingest_reports_bad_rows_and_keeps_good_ones(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,title,price\n1,Mug,abc\n2,Kettle,30\n")

    result = run("ingest", str(path))

    assert result.exit_code == 0
    assert "added 1, updated 0, unchanged 0, rejected 1" in result.stdout
    assert "rejected line 2 (id 1): price: expected a number, got 'abc'" in result.stdout


def test_unreadable_file_is_one_message_and_exit_code_1(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")

    result = run("ingest", str(path), "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": "empty.csv: the file is empty, no header and no products"
    }


def test_search_on_an_empty_store_explains_what_to_do():
    result = run("search", "anything")

    assert result.exit_code == 1
    assert "the catalog is empty: run `shopbot ingest FILE` first" in result.stderr


def test_eval_retrieval_scores_every_system_side_by_side(catalog_file, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "coffee machine"}\n{"id": "q2", "text": "boots"}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query_id\tproduct_id\tgrade\nq1\t3\t2\nq2\t4\t2\nq2\t1\t1\n")

    result = run(
        "eval",
        "retrieval",
        "--catalog",
        str(catalog_file),
        "--queries",
        str(queries),
        "--qrels",
        str(qrels),
        "--json",
    )

    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["queries"], report["products"]) == (2, 4)
    assert set(report["systems"]) == {"keyword", "dense", "hybrid", "ranked"}
    for metrics in report["systems"].values():
        assert set(metrics) == {
            "ndcg@10",
            "recall@10",
            "recall@100",
            "mrr@10",
            "latency_ms_p50",
            "latency_ms_p95",
        }
    assert report["systems"]["hybrid"]["mrr@10"] == 1.0


def test_eval_conversations_only_names_what_matched_nothing(tmp_path):
    recorded = tmp_path / "dialogues.json"
    recorded.write_text(
        json.dumps(
            [{"id": "Books:1", "utterances": [{"participant": "Client", "utterance": "hi"}]}]
        )
    )
    result = CliRunner().invoke(
        main, ["eval", "conversations", "--data", str(recorded), "--only", "Office",
               "--data-dir", str(tmp_path / "data")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no conversation's id starts with Office" in result.output
    assert not (tmp_path / "data").exists()  # refused before any store was opened
