"""Real-browser test helpers: serve an ASGI app on loopback, drive Debian's Chromium.

Plain functions and context managers, so any test module can wrap them in fixtures:

    with serve_app(app) as base_url:              # uvicorn in a thread, /healthz answered
        with launch_chromium() as browser:        # playwright + /usr/bin/chromium
            page = browser.new_page()
            block_outside_requests(page)
            page.goto(base_url + "/widget/demo")

    with serve_pages({"/": "<p>a shop</p>"}) as shop_url:   # a store on another origin
        ...

Chromium comes from the OS (`apt-get install chromium`), never from `playwright install`.
`browser_unavailable()` says why a browser test cannot run here (None when it can), so
fixtures can skip with that reason; set SHOPBOT_CHROMIUM to use another binary.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def chromium_path() -> str | None:
    """The Chromium binary: $SHOPBOT_CHROMIUM, else `chromium` on PATH, else None."""
    explicit = os.environ.get("SHOPBOT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_unavailable() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        explicit = os.environ.get("SHOPBOT_CHROMIUM")
        if explicit:
            return f"SHOPBOT_CHROMIUM={explicit} is not a file"
        return "chromium is not installed (apt-get install chromium, or set SHOPBOT_CHROMIUM)"
    return None


@contextmanager
def serve_app(app: Any, *, timeout: float = 60.0) -> Iterator[str]:
    """Run `app` with uvicorn in a background thread; yield its base URL once /healthz is 200.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing it and serving on it.
    """
    import uvicorn

    from bot.app import server_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(server_config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for_health(base_url, thread, timeout)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def serve_pages(pages: dict[str, str]) -> Iterator[str]:
    """Serve `pages` (path -> HTML, read per request, so callers may add pages later) on
    another loopback port: a store's own site, on an origin other than the bot's.

    A real server, not Playwright's request interception: Chromium only lets a page load
    scripts from loopback when the page itself came from a loopback address.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(urlsplit(self.path).path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_for_health(base_url: str, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"the server at {base_url} stopped while starting")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"no healthy server at {base_url} after {timeout}s: {last_error}")


@contextmanager
def launch_chromium(**launch_options: Any) -> Iterator[Any]:
    """A headless Playwright Chromium browser using the OS's binary."""
    reason = browser_unavailable()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            # Containers often run as root with a small /dev/shm.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
            **launch_options,
        )
        try:
            yield browser
        finally:
            browser.close()


def block_outside_requests(page: Any, allowed_hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
    """Abort requests to any other host (web fonts, analytics): tests stay offline and fast."""

    def route(request_route: Any) -> None:
        host = urlsplit(request_route.request.url).hostname
        if host in allowed_hosts:
            request_route.continue_()
        else:
            request_route.abort()

    page.route("**/*", route)


def save_screenshot(page: Any, name: str, *copies: Path, full_page: bool = False) -> Path:
    """Screenshot `page` to tests/artifacts/NAME (git-ignored) and to each of `copies`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    for copy in copies:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    return path
