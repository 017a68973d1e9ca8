"""The embeddable widget: its routes, and the script driven in a real headless Chromium.

The browser tests run the whole app (REST + Gradio page) with uvicorn on loopback and load
the widget into a shop page, as a store's visitor would. They skip when playwright or
chromium is missing; CI installs both (`.ci/run`). With SHOPBOT_SAVE_SCREENSHOTS=1 the
screenshot of the open widget is also copied to docs/widget.png for the README.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import (
    block_outside_requests,
    save_screenshot,
    serve_pages,
)
from browser import serve_app as serve_app_in_thread
from conftest import HashEmbedder

from bot.app import create_app
from bot.channels.widget import DOCS_WIDGET_SRC, render_demo_page
from bot.settings import load_settings
from bot.shop import Shop
from retrieval.embeddings import EmbeddingCache
from retrieval.index import CatalogIndex

REPO = Path(__file__).resolve().parents[1]
BLUE = "rgb(11, 95, 255)"  # the demo page's data-color, #0b5fff


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The full app (REST, Gradio page, widget) served by uvicorn on a loopback port."""
    folder = tmp_path_factory.mktemp("widget-app")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ANONYMIZED_TELEMETRY", "False")
        with pytest.MonkeyPatch.context() as caller_env:  # settings from here on only
            for name in [name for name in os.environ if name.startswith("SHOPBOT_")]:
                caller_env.delenv(name)
            settings = load_settings(
                data_dir=folder / "data", demo_products=30, ingest_batch_size=64
            )
        embedder = HashEmbedder(cache=EmbeddingCache(folder / "embeddings.sqlite"))
        shop = Shop(settings, CatalogIndex.open(settings, embedder=embedder))
        # the widget never needs the language model
        app = create_app(settings, shop=shop, ui=True, preload_lm=False)
        with serve_app_in_thread(app) as url:
            yield url


@pytest.fixture(scope="session")
def screenshot_copies() -> list[Path]:
    # Read here, at session scope: the autouse env fixture clears SHOPBOT_* before each test.
    return [REPO / "docs" / "widget.png"] if os.environ.get("SHOPBOT_SAVE_SCREENSHOTS") else []


def open_page(browser, width: int = 1280, height: int = 800):
    """A fresh page that records dialogs (a fired alert() means injected script ran)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    block_outside_requests(page)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


@pytest.fixture
def page(browser):
    page = open_page(browser)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser):
    page = open_page(browser, width=375, height=740)
    yield page
    page.context.close()


def fetch(url: str, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:  # 304 arrives as an "error"
        return error.code, error.headers, ""


@pytest.fixture(scope="module")
def shop_pages() -> Iterator[dict[str, str]]:
    """Pages of a pretend store on its own origin; each test adds its own paths."""
    pages: dict[str, str] = {}
    with serve_pages(pages) as url:
        pages["url"] = url
        yield pages


def add_shop_page(shop_pages: dict[str, str], path: str, body: str) -> str:
    """Publish `body` on the store's site at `path`; returns its URL."""
    html = f"<!doctype html><html><head><title>shop</title></head><body>{body}</body></html>"
    shop_pages[path] = html
    return shop_pages["url"] + path


def widget_tag(base_url: str, **data: str) -> str:
    from html import escape

    attributes = "".join(f' data-{name}="{escape(value)}"' for name, value in data.items())
    return f'<script src="{base_url}/widget.js"{attributes} async></script>'


def test_widget_script_is_served_as_cacheable_javascript(base_url):
    status, headers, script = fetch(base_url + "/widget.js")

    assert status == 200
    assert headers["content-type"] == "application/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=600"
    assert "window.ShopbotWidget" in script
    again = fetch(base_url + "/widget.js", {"If-None-Match": headers["etag"]})
    assert again[0] == 304


def test_demo_page_embeds_the_widget_with_one_script_tag(base_url):
    status, headers, html = fetch(base_url + "/widget/demo")

    assert status == 200 and headers["content-type"].startswith("text/html")
    tags = re.findall(r"<script\b[^>]*>", html)
    assert len(tags) == 1
    assert f'src="{base_url}/widget.js"' in tags[0]
    assert 'data-color="#0b5fff"' in tags[0] and " async" in tags[0]


def test_the_docs_copy_of_the_demo_page_is_current():
    docs = (REPO / "docs" / "widget-demo.html").read_text(encoding="utf-8")

    assert docs == render_demo_page(DOCS_WIDGET_SRC, "Shopbot Demo Store"), (
        "regenerate docs/widget-demo.html with bot.widget.render_demo_page"
    )


def test_launcher_opens_the_chat_page_and_escape_closes_it(base_url, page, screenshot_copies):
    page.goto(base_url + "/widget/demo")
    launcher = page.locator(".sbw-launcher")  # playwright's CSS reaches into the shadow root

    launcher.wait_for()
    # The shop's `button {background: ... !important}` does not reach the widget.
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == BLUE
    assert launcher.get_attribute("aria-label") == "Open Shop assistant chat"
    assert page.locator(".sbw-greeting").inner_text().startswith("Hi! Need help finding something?")

    launcher.focus()
    page.keyboard.press("Enter")  # a real <button>: keyboard users can open it

    frame = page.locator(".sbw-frame")
    assert frame.get_attribute("src") == base_url + "/?embed=1"
    chat = page.frame_locator(".sbw-frame")
    chat.locator(".gradio-container").first.wait_for(timeout=30_000)
    assert launcher.get_attribute("aria-expanded") == "true"
    assert page.evaluate("document.activeElement.tagName") == "SHOPBOT-WIDGET"
    assert page.locator(".sbw-greeting").is_hidden()
    chat.locator("textarea").first.wait_for()  # rendered enough for a useful picture
    save_screenshot(page, "widget-open.png", *screenshot_copies)

    page.locator(".sbw-close").focus()  # the chat page took focus; Escape is heard outside it
    page.keyboard.press("Escape")

    assert page.locator(".sbw-panel").is_hidden()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert launcher.evaluate("b => b.getRootNode().activeElement === b")  # focus returned
    assert page.dialogs == []


def test_the_chat_page_can_ask_the_widget_to_close(base_url, page):
    page.goto(base_url + "/widget/demo")
    page.locator(".sbw-launcher").click()
    page.frame_locator(".sbw-frame").locator(".gradio-container").first.wait_for(timeout=30_000)
    chat = next(frame for frame in page.frames if frame.url.endswith("/?embed=1"))

    # What the chat page does on Escape, since key presses inside the frame stay there.
    chat.evaluate("parent.postMessage({type: 'shopbot:close'}, '*')")

    page.locator(".sbw-panel").wait_for(state="hidden")
    page.evaluate("postMessage({type: 'shopbot:close'}, '*'); ShopbotWidget.open()")
    page.wait_for_timeout(200)
    assert page.locator(".sbw-panel").is_visible()  # only the chat frame may close it


def test_panel_fills_a_phone_screen(base_url, phone):
    phone.goto(base_url + "/widget/demo")
    phone.locator(".sbw-launcher").click()

    panel = phone.locator(".sbw-panel")
    panel.evaluate("p => Promise.all(p.getAnimations().map(a => a.finished))")  # slide-in done
    box = {name: round(value) for name, value in panel.bounding_box().items()}

    assert box == {"x": 0, "y": 0, "width": 375, "height": 740}
    save_screenshot(phone, "widget-phone-open.png")
    phone.locator(".sbw-close").click()
    assert panel.is_hidden()


def test_hostile_attributes_render_as_text_on_a_store_origin(base_url, page, shop_pages):
    hostile = "<img src=x onerror=alert(1)>"
    url = add_shop_page(
        shop_pages,
        "/hostile",
        widget_tag(
            base_url,
            greeting=hostile,
            title=hostile,
            color="red;}</style><img src=x onerror=alert(2)>",
            position="left",
        ),
    )
    page.goto(url)
    greeting = page.locator(".sbw-greeting-text")

    greeting.wait_for()
    assert greeting.inner_text() == hostile
    assert page.locator(".sbw-title").inner_text() == hostile
    page.evaluate("ShopbotWidget.open()")
    page.frame_locator(".sbw-frame").locator(".gradio-container").first.wait_for(timeout=30_000)

    images = page.evaluate(
        "document.images.length + document.querySelector('shopbot-widget')"
        ".shadowRoot.querySelectorAll('img').length"
    )
    assert images == 0
    assert page.dialogs == []
    launcher = page.locator(".sbw-launcher")
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == BLUE  # default
    assert launcher.bounding_box()["x"] < 100  # data-position="left"


def test_the_only_global_is_shopbot_widget(base_url, page, shop_pages):
    plain = add_shop_page(shop_pages, "/plain", "<p>no widget</p>")
    with_widget = add_shop_page(shop_pages, "/with", "<p>widget</p>" + widget_tag(base_url))
    names = "Object.getOwnPropertyNames(window)"

    page.goto(plain)
    before = set(page.evaluate(names))
    page.goto(with_widget)
    page.locator(".sbw-launcher").wait_for()
    after = set(page.evaluate(names))

    assert after - before == {"ShopbotWidget"}
    assert page.evaluate("Object.keys(ShopbotWidget).sort()") == ["close", "open", "toggle"]
