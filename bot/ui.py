"""The Gradio page at `/`: ask for products in plain words, see ranked product cards.

The page only collects input and renders results; the work is `CatalogIndex.search`.
Everything shown from the catalog is HTML-escaped, so a product title cannot inject markup.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import gradio as gr

from retrieval.filters import ProductFilters
from retrieval.ranking import RankedProduct

if TYPE_CHECKING:
    from bot.shop import Shop

EXAMPLES = [
    "waterproof jacket for cycling to work",
    "runing shoes under $100",
    "gift for a coffee lover",
    "warm sleeping bag for winter camping",
]

PAGE_CSS = """
.cards {display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px;}
.card {border: 1px solid #ddd; border-radius: 12px; padding: 10px; background: #fff;}
.card img {width: 100%; border-radius: 8px; aspect-ratio: 1;}
.card .title {font-weight: 600; font-size: 0.92rem; margin: 6px 0 4px; color: #222;}
.card .meta {font-size: 0.85rem; color: #555;}
.card .price {font-weight: 700; color: #111;}
.card .stock-out {color: #b3261e;}
.card .stock-in {color: #1b7f3b;}
.card .why {font-size: 0.78rem; color: #6b4e00; margin-top: 2px;}
"""


def render_cards(hits: list[RankedProduct]) -> str:
    """Product cards as HTML: image, title, price, rating, stock, why. All text escaped."""
    if not hits:
        return "<p>No products match. Try other words or fewer filters.</p>"
    cards = []
    for hit in hits:
        p = hit.product
        price = f"{p.price:,.2f} {escape(p.currency)}" if p.price is not None else ""
        rating = f"★ {p.rating:.1f}" + (f" ({p.review_count})" if p.review_count else "")
        stock = (
            '<span class="stock-in">In stock</span>'
            if p.in_stock
            else '<span class="stock-out">Out of stock</span>'
        )
        image = escape(p.image_url or f"/images/{p.id}.svg", quote=True)
        cards.append(
            f'<div class="card" data-product-id="{escape(p.id, quote=True)}">'
            f'<img src="{image}" alt="" loading="lazy">'
            f'<div class="title">{escape(p.title)}</div>'
            f'<div class="meta"><span class="price">{price}</span> · '
            f"{rating if p.rating is not None else ''}</div>"
            f'<div class="meta">{escape(p.brand or "")} · {stock}</div>'
            + "".join(f'<div class="why">{escape(r.text)}</div>' for r in hit.reasons[:2])
            + "</div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def build_page(shop: Shop) -> gr.Blocks:
    def search(query: str, price_max: float | None, category: str | None, in_stock: bool) -> str:
        try:
            filters = ProductFilters(
                price_max=price_max or None,
                category=[category] if category else [],
                in_stock=True if in_stock else None,
            )
        except ValueError as exc:
            return f"<p>{escape(str(exc))}</p>"
        return render_cards(shop.recommend(query[:1000], 12, filters))

    with gr.Blocks(title="shopbot") as page:
        gr.Markdown("## shopbot demo store\nDescribe what you are looking for, in your own words.")
        with gr.Row():
            query = gr.Textbox(
                placeholder="e.g. waterproof hiking boots under 150",
                show_label=False,
                scale=5,
                max_length=1000,
                elem_id="query",
            )
            button = gr.Button("Search", variant="primary", scale=1, elem_id="search")
        with gr.Accordion("Filters", open=False):
            price_max = gr.Number(label="Max price", minimum=0, value=None)
            category = gr.Dropdown(
                choices=shop.catalog.records.categories(), label="Category", value=None
            )
            in_stock = gr.Checkbox(label="In stock only", value=False)
        gr.Examples(EXAMPLES, inputs=query)
        results = gr.HTML(elem_id="results")
        inputs = [query, price_max, category, in_stock]
        button.click(search, inputs, results)
        query.submit(search, inputs, results)
    return page
