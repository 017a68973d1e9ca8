"""The chat page in a real headless Chromium, with the real default model and adapter.

A shopper opens `/`, asks for products, sees the reply stream in and product cards appear,
likes a product (the like reaches the feedback store that teaches the scorer), and the
conversation survives a reload. Markup typed into the chat is shown as text, never run.
An operator answers a handed-over chat from the console at /admin. Screenshots are kept in
tests/artifacts/ (and in docs/ with SHOPBOT_SAVE_SCREENSHOTS=1, for the README).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
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
from bot.stores.sessions import SessionChanges, TurnRecord
from retrieval.events import FeedbackEvent
from retrieval.experiments import ranking_arm
from retrieval.policies import load_policy_docs
from tests.test_chat import PRODUCTS

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration
# Read at import: the autouse fixture clears SHOPBOT_* variables before each test runs.
SAVE_TO_DOCS = bool(os.environ.get("SHOPBOT_SAVE_SCREENSHOTS"))
SCREENSHOT_COPIES = [REPO / "docs" / "screenshot.png"] if SAVE_TO_DOCS else []


def docs_copy(name: str) -> list[Path]:
    return [REPO / "docs" / name] if SAVE_TO_DOCS else []


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
    """The page of a store whose operators hold an admin key, running a ranking experiment,
    with a week of earlier conversations and feedback in its log."""
    arms = {"greedy": 0.0, "thompson": 1.0}
    settings = settings.model_copy(update={"admin_keys": ["admin-key"], "ranking_arms": arms})
    catalog.ingest_products(PRODUCTS)
    catalog.policies.ingest(load_policy_docs())
    shop = Shop(settings, catalog=catalog)
    chats = ChatService(settings, shop, lm=default_lm)
    seed_history(shop, chats, arms)
    app = create_app(settings, shop=shop, chats=chats)
    with serve_app(app) as url:
        yield url


def seed_history(shop: Shop, chats: ChatService, arms: dict[str, float]) -> None:
    """Earlier days' turns and feedback, as the stores would hold them, for the analytics."""
    rng = random.Random(3)
    routes = [("search", "search_products", 3)] * 6 + [
        ("policy", "check_refund_policy", 0), ("clarify", "complaint", 0),
        ("handoff", "contact_human_agent", 0), ("details", "product_details", 1),
    ]  # fmt: skip
    now, events = time.time(), []
    for day in range(6, 0, -1):
        for n in range(rng.randint(4, 9)):
            session = f"past-{day}-{n}"
            chats.sessions.open(session, "open", None)
            for _ in range(rng.randint(1, 3)):
                route, intent, shown = rng.choice(routes)
                ids = rng.sample([p.id for p in PRODUCTS], shown)
                state = {"handoff_reason": "asked"} if route == "handoff" else {}
                record = TurnRecord(session, "earlier message", intent, {}, state, ids, "…", route)
                chats.sessions.save_turn(record, SessionChanges())
                ts = now - day * 86400 + rng.random() * 3600
                arm = ranking_arm(arms, session)
                for position, product_id in enumerate(ids):
                    events.append(FeedbackEvent("impression", product_id, session, ts=ts,
                                                position=position, arm=arm))  # fmt: skip
                    if rng.random() < (0.12 if arm == "thompson" else 0.08):
                        events.append(FeedbackEvent("click", product_id, session, ts=ts + 5))
    shop.events.record_many(events)
    with sqlite3.connect(shop.settings.sessions_path) as db:  # the turns' days, as logged
        db.execute(
            "UPDATE turns SET ts = ts - 86400 * CAST(substr(session_id, 6, 1) AS INTEGER)"
            " WHERE session_id LIKE 'past-%'"
        )


def admin(url: str, method: str, path: str) -> dict:
    request = urllib.request.Request(
        url + path, method=method, headers={"Authorization": "Bearer admin-key"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_an_operator_answers_a_handed_over_chat_in_the_console_and_the_shopper_sees_it(
    staffed_site, browser
):
    """The shopper asks for a person on the page; the operator signs in to /admin, sees the
    conversation arrive in the inbox without a reload, reads it, answers, and hands it back
    to the bot; the shopper's page shows the answer as it comes."""
    from playwright.sync_api import expect

    url = staffed_site
    shopper = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    block_outside_requests(shopper)
    shopper.goto(url + "/")
    shopper.locator("#chat-input textarea").wait_for(timeout=20_000)
    send(shopper, "do you have red running shoes?")
    shopper.locator("#cards .card").first.wait_for(timeout=60_000)

    operator = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    block_outside_requests(operator)
    operator.goto(url + "/admin")
    operator.locator("#key").fill("a-wrong-key")
    operator.locator("#sign-in-button").click()
    operator.locator("#sign-in-error").get_by_text("not an admin key").wait_for(timeout=10_000)
    operator.locator("#key").fill("admin-key")
    operator.locator("#sign-in-button").click()
    operator.locator("#waiting").get_by_text("Nobody is waiting").wait_for(timeout=10_000)

    shopper.locator("#talk-to-person").click()
    shopper.locator("#status").get_by_text("take over").wait_for(timeout=60_000)
    waiting = operator.locator(".waiting").first
    waiting.wait_for(timeout=15_000)  # the inbox polls: no reload
    assert "asked" in waiting.inner_text() and "person" in waiting.inner_text()
    waiting.click()
    operator.locator("#turns").get_by_text("do you have red running shoes?").wait_for()
    operator.locator("#author").fill("Sam")
    operator.locator("#author").dispatch_event("change")
    operator.locator("#reply-text").fill("Hi, Sam here. Which size do you wear?")
    operator.locator("#send-reply").click()
    operator.locator("#turns .agent").get_by_text("Which size do you wear?").wait_for()
    save_screenshot(operator, "console-inbox.png", *docs_copy("console-inbox.png"))
    shopper.locator("#chat").get_by_text("Sam: Hi, Sam here. Which size do you wear?").wait_for(
        timeout=15_000
    )  # no reload: the page shows it as it comes
    save_screenshot(shopper, "chat-page-operator.png")

    operator.locator("#release").click()
    operator.locator("#waiting").get_by_text("Nobody is waiting").wait_for(timeout=10_000)
    assert admin(url, "GET", "/v1/admin/handoffs") == {"sessions": []}

    operator.locator("#tab-analytics").click()
    operator.locator("#figures .figure").first.wait_for(timeout=10_000)
    figures = operator.locator("#figures").inner_text()
    assert "Conversations" in figures and "Handed to a person" in figures
    charts = operator.locator("#charts").inner_text()
    assert "greedy (0)" in charts and "thompson (1)" in charts  # the experiment's arms
    assert operator.locator("#charts svg").count() >= 3
    save_screenshot(
        operator, "console-analytics.png", *docs_copy("console-analytics.png"), full_page=True
    )

    operator.locator("#tab-review").click()
    operator.locator("#review-text").fill("running shoes")
    operator.locator("#review-search").click()
    expect(operator.locator(".turn")).to_have_count(1)  # the handoff turn is filtered out
    turn = operator.locator(".turn")
    assert "search_products" in turn.inner_text() and "→ search" in turn.inner_text()
    turn.locator(".right-intent").select_option("compare_products")
    turn.locator(".mark-wrong").click()
    operator.locator(".turn.wrong").get_by_text("marked wrong (compare_products)").wait_for()
    save_screenshot(operator, "console-review.png", *docs_copy("console-review.png"))
