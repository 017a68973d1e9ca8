"""The chat page in a real headless Chromium, with the real default model and adapter.

A shopper opens `/`, asks for products, sees the reply stream in and product cards appear,
likes a product (the like reaches the feedback store that teaches the scorer), and the
conversation survives a reload. Markup typed into the chat is shown as text, never run.
A screenshot is kept in tests/artifacts/ (and docs/screenshot.png with
SHOPBOT_SAVE_SCREENSHOTS=1, for the README).
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import (
    block_outside_requests,
    save_screenshot,
    serve_app,
)

from bot.app import create_app
from bot.dialogue.service import ChatService
from bot.shop import Shop
from retrieval.policies import load_policy_docs
from tests.test_chat import PRODUCTS

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration
# Read at import: the autouse fixture clears SHOPBOT_* variables before each test runs.
SCREENSHOT_COPIES = (
    [REPO / "docs" / "screenshot.png"] if os.environ.get("SHOPBOT_SAVE_SCREENSHOTS") else []
)


@pytest.fixture
def site(settings, catalog, default_lm) -> Iterator[tuple[str, Shop]]:
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    app = create_app(settings, shop=shop, chats=ChatService(settings, shop, lm=default_lm))
    with serve_app(app) as url:
        yield url, shop


def send(page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    box.fill(text)
    page.locator("#send").click()


def test_a_shopper_chats_sees_cards_and_likes_a_product(site, browser):
    url, shop = site
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    block_outside_requests(page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url + "/")

    send(page, "red running shoes")
    cards = page.locator("#cards .card")
    cards.first.wait_for(timeout=60_000)
    shown = [cards.nth(i).get_attribute("data-product-id") for i in range(cards.count())]
    assert shown and set(shown) <= {"S1", "S3"}  # the red running shoes, nothing else
    assert "red" in page.locator("#chat").inner_text().lower()
    first_id = cards.first.get_attribute("data-product-id")
    cards.first.locator("button[data-kind='like']").click()
    page.locator("#status").get_by_text("Thanks").wait_for(timeout=20_000)
    save_screenshot(page, "chat-page.png", *SCREENSHOT_COPIES, full_page=True)

    with sqlite3.connect(Path(shop.settings.data_dir) / "events.sqlite") as db:
        likes = db.execute("SELECT product_id FROM events WHERE type = 'like'").fetchall()
    assert likes == [(first_id,)]

    send(page, '<img src=x onerror="alert(1)"> <script>alert(2)</script> hello')
    page.locator("#chat").get_by_text("hello", exact=False).last.wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.locator("#chat img[src='x']").count() == 0
    assert page.locator("#chat").get_by_text("<script>alert(2)</script>").count() >= 1

    page.reload()
    page.locator("#chat").get_by_text("red running shoes", exact=True).wait_for(timeout=20_000)


def test_the_page_fits_a_phone_screen(site, browser):
    url, _ = site
    page = browser.new_page(viewport={"width": 375, "height": 740})
    block_outside_requests(page)
    page.goto(url + "/?embed=1")
    page.locator("#chat-input textarea").wait_for(timeout=20_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    assert page.locator("#talk-to-person").is_visible()
    save_screenshot(page, "chat-page-phone.png")


@pytest.fixture
def staffed_site(settings, catalog, default_lm) -> Iterator[str]:
    """The page of a store whose operators hold an admin key."""
    settings = settings.model_copy(update={"admin_keys": ["admin-key"]})
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    app = create_app(settings, shop=shop, chats=ChatService(settings, shop, lm=default_lm))
    with serve_app(app) as url:
        yield url


def admin(url: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": "Bearer admin-key", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_person_answers_a_handed_over_chat_and_the_shopper_sees_it_live(staffed_site, browser):
    url = staffed_site
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    block_outside_requests(page)
    page.goto(url + "/")
    page.locator("#chat-input textarea").wait_for(timeout=20_000)
    page.locator("#talk-to-person").click()
    page.locator("#status").get_by_text("take over").wait_for(timeout=60_000)

    [waiting] = admin(url, "GET", "/v1/admin/handoffs")["sessions"]
    assert waiting["reason"] == "asked" and "person" in waiting["last_message"]
    admin(
        url,
        "POST",
        f"/v1/sessions/{waiting['session_id']}/messages",
        {"text": "Hi, Sam here. How can I help?", "author": "Sam"},
    )
    page.locator("#chat").get_by_text("Sam: Hi, Sam here. How can I help?").wait_for(
        timeout=15_000
    )  # no reload: the page shows it as it comes
    save_screenshot(page, "chat-page-operator.png")

    admin(url, "POST", f"/v1/sessions/{waiting['session_id']}/release")
    assert admin(url, "GET", "/v1/admin/handoffs") == {"sessions": []}
