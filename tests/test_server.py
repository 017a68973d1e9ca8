"""The web app: demo catalog on first start, product search over REST, images, the page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.shop import Shop
from retrieval.index import CatalogIndex


@pytest.fixture
def client(settings, embedder):
    settings = settings.model_copy(
        update={
            "demo_products": 60,
            "ingest_batch_size": 64,
            "exploration": 0.0,
            "admin_keys": ["admin-secret"],
            "chat_keys": ["chat-secret"],
        }
    )
    shop = Shop(settings, CatalogIndex.open(settings, embedder=embedder))
    app = create_app(settings, shop=shop, preload_lm=False)
    with TestClient(app, headers={"Authorization": "Bearer chat-secret"}) as test_client:
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


def test_feedback_is_durable_and_teaches_the_ranking(client, settings):
    from retrieval.events import EventStore

    products = client.get("/v1/products/search", params={"q": "jacket", "k": 5}).json()["products"]
    assert all("reasons" in p for p in products)
    target = products[-1]["id"]

    response = client.post(
        "/v1/feedback",
        json={"type": "purchase", "product_id": target, "session_id": "s1", "event_id": "e1"},
    )
    again = client.post(
        "/v1/feedback",
        json={"type": "purchase", "product_id": target, "session_id": "s1", "event_id": "e1"},
    )

    assert response.status_code == 201 and response.json() == {"stored": True, "duplicate": False}
    assert again.json() == {"stored": False, "duplicate": True}
    reader = EventStore(settings.data_dir / "events.sqlite")  # a second connection sees it
    assert reader.count() == 1
    reader.close()


def test_feedback_for_unknown_products_or_bad_types_is_refused(client):
    unknown = client.post(
        "/v1/feedback", json={"type": "click", "product_id": "nope", "session_id": "s1"}
    )
    bad_type = client.post(
        "/v1/feedback", json={"type": "stare", "product_id": "P00001", "session_id": "s1"}
    )

    assert unknown.status_code == 404
    assert "unknown product id 'nope'" in unknown.json()["detail"]
    assert bad_type.status_code == 422


def test_a_shoppers_history_shapes_their_results_and_can_be_deleted(client):
    first = client.get("/v1/products/search", params={"q": "shoes", "k": 10}).json()["products"]
    liked_brand = first[-1]["brand"]
    before = [p["brand"] for p in first].index(liked_brand)
    for product in first:
        if product["brand"] == liked_brand:
            for kind in ("click", "like", "purchase"):
                client.post(
                    "/v1/feedback",
                    json={
                        "type": kind,
                        "product_id": product["id"],
                        "session_id": "s9",
                        "shopper_id": "ann",
                    },
                )

    personal = client.get(
        "/v1/products/search", params={"q": "shoes", "k": 10, "shopper_id": "ann"}
    ).json()["products"]

    position = [p["brand"] for p in personal].index(liked_brand)
    assert position < before
    assert {"code": "liked_brand", "text": f"you liked {liked_brand} before"} in personal[position][
        "reasons"
    ]
    assert client.delete("/v1/shoppers/ann").status_code == 403  # a chat key
    wrong = client.delete("/v1/shoppers/ann", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    deleted = client.delete(
        "/v1/shoppers/ann", headers={"Authorization": "Bearer admin-secret"}
    ).json()
    assert deleted["deleted_events"] > 0
    after = client.get(
        "/v1/products/search", params={"q": "shoes", "k": 10, "shopper_id": "ann"}
    ).json()["products"]
    assert all(r["code"] != "liked_brand" for p in after for r in p["reasons"])


def test_new_trained_weights_are_used_without_a_restart(client, settings):
    from retrieval.learning import WeightStore

    params = {"q": "jacket", "k": 10, "session_id": "s5"}
    before = client.get("/v1/products/search", params=params).json()["products"]

    WeightStore(settings.data_dir / "scorer").save(
        {
            "relevance": 0.0,
            "price_fit": 0.0,
            "affinity_price": 0.0,
            "rating": 0.0,
            "popularity": 0.0,
            "ctr": 0.0,
            "slot_match": 0.0,
            "recency": 0.0,
            "affinity_brand": 0.0,
            "affinity_category": 0.0,
            "keyword": -1.0,
            "semantic": 0.0,
        },
        {"heldout_auc": 0.5},
        examples=0,
    )
    after = client.get("/v1/products/search", params=params).json()["products"]

    assert [p["id"] for p in after] != [p["id"] for p in before]  # keyword order reversed


def test_searching_in_a_session_logs_impressions_with_features(client, settings):
    from retrieval.events import EventStore

    client.get("/v1/products/search", params={"q": "lamp", "k": 3, "session_id": "s7"})

    reader = EventStore(settings.data_dir / "events.sqlite")
    assert [kind for _, kind, _ in reader.interactions(session_id="s7")] == ["impression"] * 3
    reader.close()


def test_a_click_after_a_search_teaches_the_weights_online(client):
    shop = client.app.state.shop
    shown = client.get(
        "/v1/products/search", params={"q": "shoes", "k": 5, "session_id": "s8"}
    ).json()["products"]
    before = dict(shop.catalog.scorer.weights)

    client.post(
        "/v1/feedback", json={"type": "click", "product_id": shown[-1]["id"], "session_id": "s8"}
    )

    assert shop.catalog.scorer.weights != before


def test_a_returning_shoppers_profile_spans_their_sessions(client):
    shop = client.app.state.shop
    product = client.get("/v1/products/search", params={"q": "lamp"}).json()["products"][0]
    client.post(
        "/v1/feedback",
        json={
            "type": "like",
            "product_id": product["id"],
            "session_id": "monday",
            "shopper_id": "bo",
        },
    )

    profile = shop.shopper_profile("bo", "tuesday")

    assert profile.liked == {product["id"]}
    assert shop.shopper_profile(None, "tuesday").is_empty()


def test_admin_routes_are_refused_when_no_admin_key_is_configured(settings, embedder):
    settings = settings.model_copy(update={"demo_products": 20})
    shop = Shop(settings, CatalogIndex.open(settings, embedder=embedder))
    with TestClient(create_app(settings, shop=shop, ui=False, preload_lm=False)) as local:
        response = local.delete("/v1/shoppers/ann", headers={"Authorization": "Bearer x"})

    assert response.status_code == 403
    assert "SHOPBOT_ADMIN_KEYS" in response.json()["detail"]
