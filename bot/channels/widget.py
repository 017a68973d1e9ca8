"""The embeddable chat widget: the script a store pastes, and a demo shop that uses it.

    app.include_router(widget_router(settings))   # before the Gradio mount at `/`

- `GET /widget.js`: `bot/static/widget.js`, one file with no dependencies. A store adds
  `<script src="https://bot.example.com/widget.js" data-color="#0b5fff" async></script>`
  (optional `data-position`, `data-greeting`, `data-title`); the script finds the bot from
  its own `src` and opens the chat page (`/?embed=1`) in an iframe.
- `GET /widget/demo`: a pretend shop page with that one tag, pointing at this server.

The script is read once, when the router is built; its ETag is a hash of its bytes, so
browsers revalidate cheaply and pick up a new release within `SCRIPT_MAX_AGE` seconds.
"""

from __future__ import annotations

import hashlib
from html import escape
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.settings import Settings

SCRIPT_MAX_AGE = 600
DOCS_WIDGET_SRC = "http://127.0.0.1:7860/widget.js"


def read_static(name: str) -> str:
    """A file shipped in `bot/static/` (package data), as text."""
    return files("bot").joinpath("static", name).read_text(encoding="utf-8")


def render_demo_page(widget_src: str, store_name: str) -> str:
    """The demo shop's HTML with the widget tag pointing at `widget_src`. Values are escaped.

    `docs/widget-demo.html` is `render_demo_page(DOCS_WIDGET_SRC, "Shopbot Demo Store")`.
    """
    return (
        read_static("widget-demo.html")
        .replace("{{WIDGET_SRC}}", escape(widget_src, quote=True))
        .replace("{{STORE_NAME}}", escape(store_name))
    )


def widget_router(settings: Settings) -> APIRouter:
    script = read_static("widget.js").encode("utf-8")
    etag = '"' + hashlib.sha256(script).hexdigest()[:32] + '"'
    script_headers = {
        "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # Shops load it from their own origin; the script itself is public.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    router = APIRouter(tags=["widget"])

    @router.get("/widget.js", name="widget_script", include_in_schema=False)
    def widget_script(request: Request) -> Response:
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=script_headers)
        return Response(
            script, media_type="application/javascript; charset=utf-8", headers=script_headers
        )

    @router.get("/widget/demo", include_in_schema=False)
    def widget_demo(request: Request) -> HTMLResponse:
        page = render_demo_page(str(request.url_for("widget_script")), settings.store_name)
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    return router
