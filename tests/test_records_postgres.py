"""The catalog records in PostgreSQL: what shoppers and the admin see is what SQLite gives, and
every worker on the same database sees the others' writes."""

from __future__ import annotations

import threading
import time

import pytest

from retrieval.catalog import Product
from retrieval.index import CatalogIndex
from retrieval.records import ProductRecords
from tests.test_search import FILTER_CASES, PRODUCTS


def ids(hits) -> list[str]:
    return [hit.product.id for hit in hits]


def keyword_ids(records: ProductRecords, text: str) -> list[str]:
    return [pid for pid, _ in records.keyword_search(text, k=10)]


def write(records: ProductRecords, *products: Product) -> None:
    records.upsert(products, [p.content_hash() for p in products])


@pytest.fixture
def shop(settings, embedder, database_url):
    """The test_search catalog with its records in PostgreSQL."""
    catalog = CatalogIndex.open(
        settings.model_copy(update={"database_url": database_url}), embedder=embedder
    )
    catalog.ingest_products(PRODUCTS)
    yield catalog
    catalog.close()


@pytest.mark.parametrize(("filters", "allowed"), FILTER_CASES)
def test_keyword_search_and_listing_hold_the_filters(shop, filters, allowed):
    hits = shop.search("running shoe boot jacket espresso", k=10, filters=filters, system="keyword")

    assert hits and set(ids(hits)) <= allowed
    assert set(ids(shop.search("", k=10, filters=filters))) == allowed


def test_keyword_search_ranks_and_corrects_misspellings_as_sqlite_does(shop, catalog):
    catalog.ingest_products(PRODUCTS)

    for text in ("runing shoos", "runing shoes", "waterproof hiking boot", "expresso machine"):
        assert ids(shop.search(text, k=3, system="keyword")) == ids(
            catalog.search(text, k=3, system="keyword")
        ), text
    assert ids(shop.search("runing shoes", k=2, system="keyword")) == ["S1", "S2"]
    assert ids(shop.search("expresso machine", k=1, system="keyword")) == ["K1"]
    assert ids(shop.search("waterproof hiking boot", k=3))[0] == "S3"


def test_changed_product_is_found_by_its_new_words_not_its_old(shop):
    boot = PRODUCTS[2].model_copy(update={"description": "Insulated snow boot for alpine treks"})

    report = shop.ingest_products([boot])

    assert report.updated == 1
    assert ids(shop.search("leather", k=5, system="keyword")) == []
    assert ids(shop.search("alpine", k=5, system="keyword")) == ["S3"]
    assert ids(shop.search("alpne", k=5, system="keyword")) == ["S3"]  # the new word spelt
    assert ids(shop.search("lether", k=5, system="keyword")) == []  # the old one is gone


def test_removed_product_leaves_search_and_spelling(shop):
    assert shop.remove(["K1", "nope"]) == 1

    assert shop.count() == 4
    assert ids(shop.search("espresso", k=5, system="keyword")) == []
    assert ids(shop.search("expresso", k=5, system="keyword")) == []
    assert "Kitchen" not in shop.records.categories()


def test_slot_values_categories_and_arrivals_are_sqlites(shop, catalog):
    catalog.ingest_products(PRODUCTS)
    before = time.time()

    assert shop.records.slot_values() == catalog.records.slot_values()
    assert (
        shop.records.categories() == catalog.records.categories() == ["Jackets", "Kitchen", "Shoes"]
    )
    assert shop.records.get_many(["S1", "X"]) == catalog.records.get_many(["S1", "X"])
    assert set(shop.records.added_since(0)) == {p.id for p in PRODUCTS}
    assert shop.records.added_since(before) == []

    shop.ingest_products([Product(id="T1", title="Summit Tent", category="Camping", price=300)])

    assert shop.records.added_since(before) == ["T1"]
    assert shop.records.categories() == ["Camping", "Jackets", "Kitchen", "Shoes"]
    assert shop.records.added_at(["T1"])["T1"] >= before


def test_two_workers_share_one_catalog(database_url):
    first, second = ProductRecords(database_url), ProductRecords(database_url)
    write(first, *PRODUCTS)
    assert keyword_ids(second, "hiking boot")[0] == "S3"

    write(first, Product(id="T1", title="Summit Tent", description="Two-person dome tent"))

    assert keyword_ids(second, "tnet") == ["T1"]  # its spelling index saw the new word
    assert second.hashes(["T1"]) == first.hashes(["T1"])
    assert second.delete(["T1"]) == 1
    assert keyword_ids(first, "tent") == []
    assert keyword_ids(first, "tnet") == []
    assert first.count() == second.count() == 5


def test_workers_writing_the_same_products_at_once_both_succeed(database_url):
    workers = [ProductRecords(database_url) for _ in range(2)]
    failures: list[BaseException] = []

    def ingest(records: ProductRecords, products: list[Product]) -> None:
        try:
            for _ in range(3):
                write(records, *products)
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=ingest, args=(workers[0], PRODUCTS)),
        threading.Thread(target=ingest, args=(workers[1], PRODUCTS[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert workers[0].count() == 5
    assert keyword_ids(workers[1], "expresso") == ["K1"]
    assert workers[0].delete(["K1"]) == 1
    assert keyword_ids(workers[1], "expresso") == []  # its word counted once, so gone now


def test_collections_have_their_own_tables(database_url):
    shoes, kitchen = (ProductRecords(database_url, collection=c) for c in ("shoes", "kitchen"))
    write(shoes, *PRODUCTS[:3])
    write(kitchen, PRODUCTS[4])

    assert shoes.count() == 3 and kitchen.count() == 1
    assert keyword_ids(kitchen, "espresso") == ["K1"]
    assert keyword_ids(shoes, "espresso") == []
    with pytest.raises(ValueError, match="collection must be a lower-case SQL name"):
        ProductRecords(database_url, collection="shoes; DROP TABLE x")


def test_shopper_text_is_only_ever_a_parameter(shop):
    for text in ("boot'); DROP TABLE catalog_products; --", "shoe & !boot | <->", "50% off\\"):
        shop.search(text, k=5, system="keyword")

    assert shop.count() == 5
    assert ids(shop.search("boot & running", k=5, system="keyword"))[0] in {"S1", "S2", "S3"}
