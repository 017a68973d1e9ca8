"""Catalog ingestion: every bad row gets one clear message and no valid row is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.errors import CatalogFileError
from retrieval.index import CatalogIndex

HEADER = "id,title,description,category,brand,price,rating,in_stock,colour,size\n"
GOOD_ROWS = [
    'A1,Trail Running Shoe,"Grippy shoe for muddy trails",Shoes,Stride,89.5,4.5,true,red,"8, 9"\n',
    'A2,Rain Jacket,"Keeps you dry on the bike",Jackets,Drift,120,4.1,yes,blue,"S, M"\n',
    "A3,Espresso Maker,Rich coffee at home,Kitchen,Brewster,64,4.8,false,black,\n",
]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def stored_ids(catalog: CatalogIndex) -> set[str]:
    return set(catalog.records.ids())


def test_good_csv_is_stored_in_both_stores(catalog, tmp_path):
    report = catalog.ingest(write(tmp_path, "p.csv", HEADER + "".join(GOOD_ROWS)))

    assert (report.added, report.updated, report.unchanged, report.rejected) == (3, 0, 0, [])
    assert stored_ids(catalog) == {"A1", "A2", "A3"}
    assert set(catalog.vectors.ids()) == {"A1", "A2", "A3"}
    jacket = catalog.records.get_many(["A2"])["A2"]
    assert jacket.price == 120 and jacket.in_stock is True
    assert jacket.attributes == {"colour": "blue", "size": "S, M"}


def test_wrong_header_is_one_clear_message(catalog, tmp_path):
    path = write(tmp_path, "p.csv", "sku,name,cost\nA1,Shoe,10\n")

    with pytest.raises(CatalogFileError) as error:
        catalog.ingest(path)

    message = str(error.value)
    assert "no 'id' or 'title' column" in message
    assert "'sku' -> 'id'" in message and "'name' -> 'title'" in message
    assert catalog.count() == 0


def test_price_abc_rejects_only_that_row(catalog, tmp_path):
    bad = "B1,Bad Price Boot,,Shoes,Stride,abc,4.0,true,,\n"
    report = catalog.ingest(write(tmp_path, "p.csv", HEADER + GOOD_ROWS[0] + bad + GOOD_ROWS[1]))

    assert [str(issue) for issue in report.rejected] == [
        "line 3 (id B1): price: expected a number, got 'abc'"
    ]
    assert stored_ids(catalog) == {"A1", "A2"}


def test_duplicate_id_keeps_the_first_row(catalog, tmp_path):
    duplicate = "A1,Another Title,,Shoes,Other,10,3.0,true,,\n"
    report = catalog.ingest(write(tmp_path, "p.csv", HEADER + GOOD_ROWS[0] + duplicate))

    assert [str(i) for i in report.rejected] == [
        "line 3 (id A1): duplicate id (first seen on line 2); kept the first"
    ]
    assert catalog.records.get_many(["A1"])["A1"].title == "Trail Running Shoe"


def test_one_megabyte_description_is_cut_and_reported(catalog, tmp_path):
    huge = "x" * 1_048_576
    row = f'H1,Huge Lamp,"{huge}",Lighting,Glow,30,4.0,true,,\n'
    report = catalog.ingest(write(tmp_path, "p.csv", HEADER + row + GOOD_ROWS[0]))

    assert report.rejected == []
    assert [str(w) for w in report.warnings] == [
        "line 2 (id H1): description is 1,048,576 characters; kept the first 10,000"
    ]
    assert len(catalog.records.get_many(["H1"])["H1"].description) == 10_000
    assert stored_ids(catalog) == {"H1", "A1"}


def test_non_utf8_bytes_are_read_as_windows_1252(catalog, tmp_path):
    latin = "C1,Caf\xe9 Mug,,Kitchen,Brewster,12,4.0,true,,\n".encode("cp1252")
    content = HEADER.encode() + GOOD_ROWS[0].encode() + latin
    report = catalog.ingest(write(tmp_path, "p.csv", content))

    assert report.rejected == []
    assert [str(w) for w in report.warnings] == [
        "line 3: not valid UTF-8 (byte 0xe9 at column 7); read as Windows-1252, "
        "check the file's encoding"
    ]
    assert catalog.records.get_many(["C1"])["C1"].title == "Café Mug"


def test_empty_file_is_one_clear_message(catalog, tmp_path):
    with pytest.raises(CatalogFileError, match="the file is empty, no header and no products"):
        catalog.ingest(write(tmp_path, "p.csv", ""))


def test_bad_jsonl_lines_are_reported_and_good_lines_kept(catalog, tmp_path):
    lines = [
        json.dumps({"id": "J1", "title": "Desk Lamp", "price": 25, "color": "white"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "J2"}),
        json.dumps({"id": "J3", "title": "Yoga Mat", "rating": 7}),
        json.dumps({"id": "J4", "title": "Kettle", "warranty": "2 years", "in_stock": "no"}),
    ]
    report = catalog.ingest(write(tmp_path, "p.jsonl", "\n".join(lines) + "\n"))

    assert [str(i) for i in report.rejected] == [
        "line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        "line 3: expected a JSON object, got list",
        "line 4 (id J2): title is required",
        "line 5 (id J3): rating: Input should be less than or equal to 5",
    ]
    products = catalog.records.get_many(["J1", "J4"])
    assert products["J1"].attributes == {"colour": "white"}
    assert products["J4"].attributes == {"warranty": "2 years"}
    assert products["J4"].in_stock is False


def test_reingest_of_unchanged_file_changes_nothing(catalog, embedder, tmp_path):
    path = write(tmp_path, "p.csv", HEADER + "".join(GOOD_ROWS))
    catalog.ingest(path)
    embedded = embedder.encoded

    again = catalog.ingest(path)

    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert embedder.encoded == embedded


def test_changed_price_updates_without_embedding_again(catalog, embedder, tmp_path):
    catalog.ingest(write(tmp_path, "p.csv", HEADER + "".join(GOOD_ROWS)))
    embedded = embedder.encoded
    cheaper = GOOD_ROWS[1].replace(",120,", ",99,")

    report = catalog.ingest(write(tmp_path, "p.csv", HEADER + GOOD_ROWS[0] + cheaper))

    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert embedder.encoded == embedded  # same text: the cached vector is reused
    assert catalog.records.get_many(["A2"])["A2"].price == 99


def test_replace_removes_products_missing_from_file_but_not_rejected_ones(catalog, tmp_path):
    catalog.ingest(write(tmp_path, "p.csv", HEADER + "".join(GOOD_ROWS)))
    typo = GOOD_ROWS[2].replace(",64,", ",sixty,")

    report = catalog.ingest(write(tmp_path, "p.csv", HEADER + GOOD_ROWS[0] + typo), replace=True)

    assert report.removed == 1
    assert stored_ids(catalog) == {"A1", "A3"}  # A3's row had a typo: kept, not removed
    assert set(catalog.vectors.ids()) == {"A1", "A3"}


def test_remove_deletes_from_both_stores(catalog, tmp_path):
    catalog.ingest(write(tmp_path, "p.csv", HEADER + "".join(GOOD_ROWS)))

    assert catalog.remove(["A2", "missing"]) == 1
    assert stored_ids(catalog) == {"A1", "A3"}
    assert set(catalog.vectors.ids()) == {"A1", "A3"}
    assert [h.product.id for h in catalog.search("rain jacket", k=5, system="keyword")] == []


def test_interrupted_ingest_is_consistent_and_a_rerun_completes_it(settings, embedder, tmp_path):
    rows = [f"R{i},Product {i},Thing number {i},Misc,Brand,{i},4.0,true,,\n" for i in range(10)]
    path = write(tmp_path, "p.csv", HEADER + "".join(rows))

    class Crash(Exception):
        pass

    catalog = CatalogIndex.open(settings, embedder=embedder)
    original_upsert = catalog.records.upsert
    calls = {"n": 0}

    def crash_on_second_batch(products, hashes):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash("power cut")
        original_upsert(products, hashes)

    catalog.records.upsert = crash_on_second_batch
    with pytest.raises(Crash):
        catalog.ingest(path)
    committed = stored_ids(catalog)
    assert committed == {f"R{i}" for i in range(4)}  # whole batches only
    assert {h.product.id for h in catalog.search("product", k=20)} <= committed
    catalog.close()

    reopened = CatalogIndex.open(settings, embedder=embedder)
    report = reopened.ingest(path)

    assert (report.added, report.unchanged) == (6, 4)
    assert stored_ids(reopened) == {f"R{i}" for i in range(10)}
    assert set(reopened.vectors.ids()) == stored_ids(reopened)
    reopened.close()
