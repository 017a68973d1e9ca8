"""The web app: Gradio page at `/`, REST under `/v1`, health at `/healthz`, one process.

    from bot.server import create_app
    app = create_app(load_settings())      # any ASGI server can run it

`shopbot serve` runs it with uvicorn. On first start with an empty catalog the generated demo
catalog is ingested, so a fresh install has something to show.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from bot.images import placeholder_svg
from bot.settings import Settings
from bot.shop import Shop
from retrieval.errors import RetrievalError
from retrieval.events import FeedbackEvent, InvalidEvent, UnknownProduct
from retrieval.filters import ProductFilters

log = logging.getLogger("shopbot.server")


class FeedbackIn(BaseModel):
    type: Literal["impression", "click", "like", "dislike", "add_to_cart", "purchase"]
    product_id: str = Field(min_length=1, max_length=200)
    session_id: str = Field(min_length=1, max_length=200)
    shopper_id: str | None = Field(None, max_length=200)
    event_id: str | None = Field(None, max_length=200, description="Idempotency key.")
    position: int | None = Field(None, ge=0, le=1000)


def create_app(settings: Settings, *, shop: Shop | None = None, ui: bool = True) -> FastAPI:
    shop = shop or Shop(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        shop.ensure_demo_catalog()
        shop.catalog.embedder.load()  # the first shopper should not wait for the model
        shop.events.count()  # open the feedback store now: it loads the learnt click rates
        yield
        shop.close()

    app = FastAPI(
        title="shopbot",
        description="Conversational shopping and customer-service assistant.",
        lifespan=lifespan,
    )
    app.state.shop = shop

    @app.exception_handler(RetrievalError)
    async def retrieval_error(request, exc: RetrievalError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": str(exc)})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "products": shop.catalog.count()}

    @app.get("/v1/products/search")
    def search_products(
        q: Annotated[str, Query(max_length=1000, description="What the shopper wants.")] = "",
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        price_min: Annotated[float | None, Query(ge=0)] = None,
        price_max: Annotated[float | None, Query(ge=0)] = None,
        category: Annotated[list[str] | None, Query()] = None,
        brand: Annotated[list[str] | None, Query()] = None,
        colour: Annotated[list[str] | None, Query()] = None,
        size: Annotated[list[str] | None, Query()] = None,
        in_stock: bool | None = None,
        rating_min: Annotated[float | None, Query(ge=0, le=5)] = None,
        shopper_id: Annotated[str | None, Query(max_length=200)] = None,
        session_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        """Products for a request, ranked for this shopper, each with its reasons."""
        try:
            filters = ProductFilters(
                price_min=price_min,
                price_max=price_max,
                category=category or [],
                brand=brand or [],
                colour=colour or [],
                size=size or [],
                in_stock=in_stock,
                rating_min=rating_min,
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        try:
            ranked = shop.recommend(q, k, filters, shopper_id=shopper_id, session_id=session_id)
        except InvalidEvent as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"query": q, "products": [item.to_dict() for item in ranked]}

    @app.post("/v1/feedback", status_code=201)
    def feedback(body: FeedbackIn) -> dict:
        """Record a shopper's reaction; it is on disk before this answers."""
        try:
            stored = shop.record_feedback(FeedbackEvent(**body.model_dump()))
        except UnknownProduct as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except InvalidEvent as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"stored": stored, "duplicate": not stored}

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not settings.admin_keys:
            raise HTTPException(
                status_code=403,
                detail="admin routes are off: set SHOPBOT_ADMIN_KEYS to enable them",
            )
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise HTTPException(status_code=401, detail="missing bearer key")
        if not any(hmac.compare_digest(key, known) for known in settings.admin_keys):
            raise HTTPException(status_code=403, detail="this key may not use admin routes")

    @app.delete("/v1/shoppers/{shopper_id}", dependencies=[Depends(require_admin)])
    def delete_shopper(shopper_id: str) -> dict:
        """Forget everything stored about one shopper (admin key required)."""
        return {"shopper_id": shopper_id, "deleted_events": shop.events.delete_shopper(shopper_id)}

    @app.get("/v1/policies/search")
    def search_policies(
        q: Annotated[str, Query(min_length=1, max_length=1000)],
        k: Annotated[int, Query(ge=1, le=20)] = 3,
    ) -> dict:
        return {
            "query": q,
            "sections": [hit.to_dict() for hit in shop.catalog.policies.search(q, k)],
        }

    @app.get("/images/{product_id}.svg", include_in_schema=False)
    def product_image(product_id: str) -> Response:
        product = shop.catalog.records.get_many([product_id]).get(product_id)
        if product is None:
            raise HTTPException(status_code=404, detail=f"no product {product_id!r}")
        return Response(
            placeholder_svg(product),
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    if ui:
        import gradio as gr

        from bot.ui import PAGE_CSS, build_page

        app = gr.mount_gradio_app(app, build_page(shop), path="/", css=PAGE_CSS)
    return app


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    log.info("shopbot on http://%s:%s (data in %s)", host, port, settings.data_dir)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
