"""`shopbot ingest`, `remove` and `search`: the catalog and policies from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bot.cli.options import common_options, emit
from bot.dialogue.grounding import money
from bot.errors import ShopbotError


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--collection", default=None, help="Chroma collection [default: products].")
@click.option("--replace", is_flag=True, help="Remove products that are not in the file.")
@common_options
def ingest(settings, as_json: bool, path: Path, collection: str | None, replace: bool) -> None:
    """Add or update products from a CSV or JSONL file, or policies from a folder of .md files.

    Rows are checked one by one: bad rows are listed with their line number and reason, and
    the good rows are stored. Unchanged products are skipped. A folder of markdown policy
    documents (one file per topic, `## ` sections) replaces the store's policy sections.

    Example usage: shopbot ingest products.csv --replace
                   shopbot ingest ./policies/
    """
    from bot.shop import Shop

    if collection:
        key = "policy_collection" if path.is_dir() else "collection"
        settings = settings.model_copy(update={key: collection})
    shop = Shop(settings)
    if path.is_dir():
        try:
            counts = shop.ingest_policies(load_policy_folder(path))
        finally:
            shop.close()
        summary = ", ".join(f"{name} {count}" for name, count in counts.items())
        emit(as_json, {"source": str(path), **counts}, f"{path}: policy sections {summary}")
        return
    try:
        report = shop.ingest(path, replace=replace, progress=sys.stderr.isatty())
    finally:
        shop.close()
    lines = [
        f"{path}: added {report.added}, updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {len(report.rejected)}"
        + (f", removed {report.removed}" if replace else "")
        + f" ({report.seconds:.1f}s)"
    ]
    lines += [f"  rejected {issue}" for issue in report.rejected]
    lines += [f"  warning {issue}" for issue in report.warnings]
    emit(as_json, report.to_dict(), "\n".join(lines))


def load_policy_folder(path: Path) -> list:
    from retrieval.policies import load_policy_docs

    docs = load_policy_docs(path)
    if not docs:
        raise ShopbotError(f"{path}: no policy sections found (expected .md files with text)")
    return docs


@click.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--collection", default=None, help="Chroma collection [default: products].")
@common_options
def remove(settings, as_json: bool, ids: tuple[str, ...], collection: str | None) -> None:
    """Remove products by id.

    Example usage: shopbot remove P00012 P00013
    """
    from bot.shop import Shop

    if collection:
        settings = settings.model_copy(update={"collection": collection})
    shop = Shop(settings)
    try:
        removed = shop.remove(list(ids))
    finally:
        shop.close()
    emit(as_json, {"removed": removed}, f"removed {removed} of {len(ids)} products")


@click.command()
@click.argument("query")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--system",
    type=click.Choice(["hybrid", "dense", "keyword", "ranked"]),
    default="hybrid",
    show_default=True,
)
@click.option("--price-min", type=float)
@click.option("--price-max", type=float)
@click.option("--category", multiple=True)
@click.option("--brand", multiple=True)
@click.option("--colour", "--color", "colour", multiple=True)
@click.option("--size", multiple=True)
@click.option("--in-stock", is_flag=True, help="Only products in stock.")
@click.option("--rating-min", type=float)
@common_options
def search(settings, as_json: bool, query: str, k: int, system: str, **filter_args: Any) -> None:
    """Search the catalog and print ranked products.

    Example usage: shopbot search "waterproof hiking boots" -k 5 --price-max 150 --in-stock
    """
    from bot.shop import Shop
    from retrieval.filters import ProductFilters

    filters = ProductFilters(
        price_min=filter_args["price_min"],
        price_max=filter_args["price_max"],
        category=list(filter_args["category"]),
        brand=list(filter_args["brand"]),
        colour=list(filter_args["colour"]),
        size=list(filter_args["size"]),
        in_stock=True if filter_args["in_stock"] else None,
        rating_min=filter_args["rating_min"],
    )
    shop = Shop(settings)
    try:
        if shop.product_count() == 0:
            raise ShopbotError("the catalog is empty: run `shopbot ingest FILE` first")
        hits = shop.search(query, k=k, filters=filters, system=system)
    finally:
        shop.close()
    products = [hit.to_dict() for hit in hits]
    lines = [
        f"{i:>2}. {p['title']}  {money(p['price'], p['currency'])}  [{p['id']}]"
        + ("" if p["in_stock"] else "  (out of stock)")
        for i, p in enumerate(products, start=1)
    ]
    emit(as_json, {"query": query, "products": products}, "\n".join(lines) or "no products found")
