"""Hybrid search: filters hold in every system, keyword recall forgives typos, fusion merges."""

from __future__ import annotations

import pytest

from retrieval.catalog import Product
from retrieval.filters import ProductFilters
from retrieval.index import CatalogIndex
from retrieval.langchain_retriever import ProductRetriever

PRODUCTS = [
    Product(
        id="S1",
        title="Stride Road Running Shoe",
        description="Cushioned running shoe for daily road runs",
        category="Shoes",
        brand="Stride",
        price=90,
        rating=4.6,
        attributes={"colour": "red", "size": "8, 9, 10"},
    ),
    Product(
        id="S2",
        title="Stride Trail Running Shoe",
        description="Grippy running shoe for muddy trails",
        category="Shoes",
        brand="Stride",
        price=130,
        rating=4.2,
        attributes={"colour": "blue", "size": "9, 10, 11"},
    ),
    Product(
        id="S3",
        title="Peak Hiking Boot",
        description="Waterproof leather boot for winter hikes",
        category="Shoes",
        brand="Peak",
        price=160,
        rating=4.8,
        in_stock=False,
        attributes={"colour": "brown", "size": "10, 11"},
    ),
    Product(
        id="J1",
        title="Drift Rain Jacket",
        description="Waterproof shell that keeps you dry on a bike commute",
        category="Jackets",
        brand="Drift",
        price=120,
        rating=3.9,
        attributes={"colour": "red", "size": "S, M, L"},
    ),
    Product(
        id="K1",
        title="Brewster Espresso Machine",
        description="Pulls rich espresso shots at home",
        category="Kitchen",
        brand="Brewster",
        price=249,
        rating=4.4,
        attributes={"colour": "black"},
    ),
]

FILTER_CASES = [
    (ProductFilters(price_max=100), {"S1"}),
    (ProductFilters(price_min=125, price_max=200), {"S2", "S3"}),
    (ProductFilters(category="shoes", in_stock=True), {"S1", "S2"}),
    (ProductFilters(brand=["STRIDE", "peak"]), {"S1", "S2", "S3"}),
    (ProductFilters(colour="red"), {"S1", "J1"}),
    (ProductFilters(size="11"), {"S2", "S3"}),
    (ProductFilters(rating_min=4.5), {"S1", "S3"}),
    (ProductFilters(colour=["red", "brown"], size="10"), {"S1", "S3"}),
]


@pytest.fixture
def shop(catalog: CatalogIndex) -> CatalogIndex:
    catalog.ingest_products(PRODUCTS)
    return catalog


def ids(hits) -> list[str]:
    return [hit.product.id for hit in hits]


@pytest.mark.parametrize("system", ["keyword", "dense", "hybrid"])
@pytest.mark.parametrize(("filters", "allowed"), FILTER_CASES)
def test_filters_hold_in_every_system(shop, system, filters, allowed):
    hits = shop.search("running shoe boot jacket espresso", k=10, filters=filters, system=system)

    assert set(ids(hits)) <= allowed
    if system != "keyword":  # dense recall returns every product that passes the filters
        assert set(ids(hits)) == allowed


def test_dense_filters_run_inside_the_chroma_query(shop):
    where = ProductFilters(price_max=100, colour=["red", "blue"], in_stock=True).to_chroma_where()

    assert where == {
        "$and": [
            {"price": {"$lte": 100.0}},
            {"in_stock": {"$eq": True}},
            {"$or": [{"colours": {"$contains": "blue"}}, {"colours": {"$contains": "red"}}]},
        ]
    }
    assert shop.vectors.query(shop.embedder.embed_query("shoe"), 10, ProductFilters(price_max=100))


def test_keyword_search_corrects_misspellings(shop):
    assert ids(shop.search("runing shoos", k=2, system="keyword")) == ["S1", "S2"]
    assert ids(shop.search("expresso machine", k=1, system="keyword")) == ["K1"]


def test_hybrid_puts_products_found_by_both_systems_first(shop):
    hits = shop.search("waterproof hiking boot", k=3)

    assert ids(hits)[0] == "S3"
    assert hits[0].dense_rank is not None and hits[0].keyword_rank is not None
    assert hits[0].score > hits[1].score


def test_blank_query_with_filters_lists_best_rated_matches(shop):
    assert ids(shop.search("", k=10, filters=ProductFilters(category="shoes"))) == [
        "S3",
        "S1",
        "S2",
    ]
    assert shop.search("   ", k=10) == []


def test_invalid_requests_raise_clear_errors(shop):
    with pytest.raises(ValueError, match="k must be > 0, but got 0"):
        shop.search("shoe", k=0)
    with pytest.raises(ValueError, match="system must be one of keyword, dense, hybrid"):
        shop.search("shoe", system="magic")
    with pytest.raises(ValueError, match="price_min must be <= price_max, but got 50 > 10"):
        ProductFilters(price_min=50, price_max=10)


def test_langchain_retriever_returns_product_documents(shop):
    retriever = ProductRetriever(catalog=shop, k=2, filters=ProductFilters(in_stock=True))

    docs = retriever.invoke("waterproof boots for hiking")

    assert [doc.id for doc in docs][0] != "S3"  # out of stock, filtered
    assert docs[0].metadata["price"] is not None
    assert "title" in docs[0].metadata and docs[0].page_content


@pytest.mark.integration
def test_chroma_server_mode_stores_and_filters(chroma_server, settings, embedder):
    server_settings = settings.model_copy(
        update={"chroma_url": chroma_server, "collection": "server_test"}
    )
    catalog = CatalogIndex.open(server_settings, embedder=embedder)
    try:
        report = catalog.ingest_products(PRODUCTS)
        hits = catalog.search("shoe", k=10, filters=ProductFilters(colour="red"), system="dense")

        assert report.added == 5
        assert catalog.vectors.count() == 5
        assert set(ids(hits)) == {"S1", "J1"}
        assert catalog.remove(["S1"]) == 1
        assert catalog.vectors.count() == 4
    finally:
        catalog.vectors.drop()
        catalog.close()


def test_policy_sections_are_found_and_replaced_as_a_set(catalog, tmp_path):
    from retrieval.policies import load_policy_docs

    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "returns.md").write_text(
        "# Returns\n## Return window\nReturn any item within 30 days of delivery.\n"
        "## Return shipping\nReturn labels cost 6.95 and are free for faulty items.\n"
    )
    first = catalog.policies.ingest(load_policy_docs(folder))
    hits = catalog.policies.search("return window days", k=1)

    assert first == {"added": 2, "updated": 0, "unchanged": 0, "removed": 0}
    assert hits[0].doc.id == "returns#return-window"
    assert hits[0].doc.title == "Returns"

    (folder / "returns.md").write_text("# Returns\n## Return window\nWithin 60 days.\n")
    second = catalog.policies.ingest(load_policy_docs(folder))

    assert second == {"added": 0, "updated": 1, "unchanged": 0, "removed": 1}
    assert catalog.policies.search("how long to return", k=5)[0].doc.text == "Within 60 days."


def test_a_section_is_found_through_the_questions_it_lists(catalog, tmp_path):
    from retrieval.policies import load_policy_docs

    folder = tmp_path / "policies"
    folder.mkdir()
    gifts = "## Gift returns\n<!-- questions\nwill my aunt find out\n-->\nStore credit only.\n"
    (folder / "returns.md").write_text(f"# Returns\n## Window\nAny item within 30 days.\n{gifts}")
    catalog.policies.ingest(load_policy_docs(folder))

    hit = catalog.policies.search("will my aunt find out if i return it", k=1)[0]
    assert (hit.doc.section, hit.doc.text) == ("Gift returns", "Store credit only.")
    assert hit.score == hit.asked > 0.5

    (folder / "returns.md").write_text("# Returns\n## Window\nAny item within 30 days.\n")
    assert catalog.policies.ingest(load_policy_docs(folder))["removed"] == 1
    assert catalog.policies.search("will my aunt find out", k=2)[0].doc.section == "Window"
