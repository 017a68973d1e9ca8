"""Placeholder product pictures, drawn as SVG from the product's own fields."""

from __future__ import annotations

import hashlib
from html import escape

from retrieval.catalog import Product

# Named colours a catalog uses, mapped to fills; anything else gets a colour from its name.
SWATCHES = {
    "black": "#2b2b2b",
    "white": "#f4f4f4",
    "grey": "#9e9e9e",
    "gray": "#9e9e9e",
    "red": "#d64545",
    "blue": "#3f6fd8",
    "navy": "#23346b",
    "green": "#3d9a5b",
    "olive": "#7a7f3a",
    "yellow": "#e8c547",
    "orange": "#ea8a36",
    "pink": "#e58fb5",
    "purple": "#8157c2",
    "brown": "#8a5a3b",
    "beige": "#d9c7a7",
    "silver": "#c0c4c8",
    "gold": "#c9a64a",
}


def _fill(product: Product) -> str:
    for colour in product.colours:
        if colour in SWATCHES:
            return SWATCHES[colour]
    digest = hashlib.md5((product.category or product.title).encode()).hexdigest()
    return f"#{digest[:6]}"


def placeholder_svg(product: Product) -> str:
    """A 320x320 SVG card: colour swatch, category and the title's initials."""
    fill = _fill(product)
    initials = "".join(word[0] for word in product.title.split()[:2] if word).upper()
    label = escape((product.category or "")[:28])
    text_colour = "#222" if fill in ("#f4f4f4", "#d9c7a7", "#e8c547", "#c0c4c8") else "#fff"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320">'
        f'<rect width="320" height="320" rx="24" fill="{fill}"/>'
        f'<text x="160" y="178" font-family="sans-serif" font-size="96" text-anchor="middle" '
        f'fill="{text_colour}">{escape(initials)}</text>'
        f'<text x="160" y="272" font-family="sans-serif" font-size="22" text-anchor="middle" '
        f'fill="{text_colour}" opacity="0.85">{label}</text></svg>'
    )
