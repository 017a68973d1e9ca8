"""The web app: demo catalog on first start, product search over REST, images, the page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.server import Shop, create_app
from retrieval.index import CatalogIndex


@pytest.fixture
def client(settings, embedder):
    settings = settings.model_copy(update={"demo_products": 60, "ingest_batch_size": 64})
    shop = Shop(settings, CatalogIndex.open(settings, embedder=embedder))
    with TestClient(create_app(settings, shop=shop)) as test_client:
        yield test_client


def test_first_start_ingests_the_demo_catalog(client):
    health = client.get("/healthz")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "products": 60}


def test_search_endpoint_returns_filtered_products(client):
    response = client.get("/v1/products/search", params={"q": "shoes", "k": 5, "price_max": 80})

    assert response.status_code == 200
    products = response.json()["products"]
    assert 0 < len(products) <= 5
    assert all(p["price"] <= 80 for p in products)
    assert set(products[0]) >= {"id", "title", "price", "score"}


def test_search_endpoint_rejects_bad_parameters(client):
    assert client.get("/v1/products/search", params={"q": "x", "k": 0}).status_code == 422
    response = client.get("/v1/products/search", params={"price_min": 50, "price_max": 10})
    assert response.status_code == 422
    assert "price_min must be <= price_max" in response.json()["detail"]


def test_product_images_are_generated_placeholders(client):
    product_id = client.get("/v1/products/search", params={"q": "jacket"}).json()["products"][0][
        "id"
    ]

    image = client.get(f"/images/{product_id}.svg")

    assert image.status_code == 200
    assert image.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/images/..%2F..%2Fetc%2Fpasswd.svg").status_code == 404


def test_page_is_served_at_root(client):
    page = client.get("/")

    assert page.status_code == 200
    assert "shopbot" in page.text


def test_policy_search_quotes_the_demo_store_documents(client):
    response = client.get("/v1/policies/search", params={"q": "how long do I have to return"})

    assert response.status_code == 200
    sections = response.json()["sections"]
    assert sections and set(sections[0]) == {"id", "title", "section", "text", "score"}
