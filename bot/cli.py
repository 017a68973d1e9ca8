"""The `shopbot` command line.

Example usage:

    shopbot serve                                  # chat page on http://127.0.0.1:7860
    shopbot ingest products.csv                    # add or update products
    shopbot search "red running shoes" -k 5 --price-max 120
    shopbot eval retrieval --catalog c.jsonl --queries q.jsonl --qrels qrels.tsv --json

Every command takes --config FILE (TOML) and --data-dir DIR (default ./.shopbot); --json
prints one JSON document on stdout and keeps logs on stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bot.errors import ShopbotError
from retrieval.errors import RetrievalError


def _quiet_libraries() -> None:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("chromadb", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)


def common_options(func: Callable) -> Callable:
    """--config, --data-dir and --json on every command, plus uniform error handling."""

    @click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="SHOPBOT_CONFIG",
        help="TOML settings file.",
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where shopbot keeps its stores [default: ./.shopbot].",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    @functools.wraps(func)
    def wrapper(config: Path | None, data_dir: Path | None, as_json: bool, **kwargs: Any) -> None:
        from bot.settings import load_settings

        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
        )
        _quiet_libraries()
        try:
            settings = load_settings(config, data_dir=data_dir)
            func(settings=settings, as_json=as_json, **kwargs)
        except (ShopbotError, RetrievalError, ValueError, OSError) as exc:
            if as_json:
                click.echo(json.dumps({"error": str(exc)}))
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def emit(as_json: bool, document: Any, text: str) -> None:
    click.echo(json.dumps(document, ensure_ascii=False) if as_json else text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shopbot")
def main() -> None:
    """shopbot: a conversational shopping and customer-service assistant."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True, type=int)
@common_options
def serve(settings, as_json: bool, host: str, port: int) -> None:
    """Start the chat page (/) and the REST API (/v1).

    On first start with an empty store the demo catalog is generated and ingested.

    Example usage: shopbot serve --port 8080
    """
    from bot.server import run_server

    run_server(settings, host=host, port=port)


@main.command()
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
    from retrieval.index import CatalogIndex

    if collection:
        key = "policy_collection" if path.is_dir() else "collection"
        settings = settings.model_copy(update={key: collection})
    catalog = CatalogIndex.open(settings)
    if path.is_dir():
        try:
            counts = catalog.policies.ingest(load_policy_folder(path))
        finally:
            catalog.close()
        summary = ", ".join(f"{name} {count}" for name, count in counts.items())
        emit(as_json, {"source": str(path), **counts}, f"{path}: policy sections {summary}")
        return
    try:
        report = catalog.ingest(path, replace=replace, progress=sys.stderr.isatty())
    finally:
        catalog.close()
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


@main.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--collection", default=None, help="Chroma collection [default: products].")
@common_options
def remove(settings, as_json: bool, ids: tuple[str, ...], collection: str | None) -> None:
    """Remove products by id.

    Example usage: shopbot remove P00012 P00013
    """
    from retrieval.index import CatalogIndex

    if collection:
        settings = settings.model_copy(update={"collection": collection})
    catalog = CatalogIndex.open(settings)
    try:
        removed = catalog.remove(list(ids))
    finally:
        catalog.close()
    emit(as_json, {"removed": removed}, f"removed {removed} of {len(ids)} products")


@main.command()
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
    from retrieval.filters import ProductFilters
    from retrieval.index import CatalogIndex

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
    catalog = CatalogIndex.open(settings)
    try:
        if catalog.count() == 0:
            raise ShopbotError("the catalog is empty: run `shopbot ingest FILE` first")
        hits = catalog.search(query, k=k, filters=filters, system=system)
    finally:
        catalog.close()
    products = [hit.to_dict() for hit in hits]
    lines = [
        f"{i:>2}. {p['title']}  {_money(p['price'], p['currency'])}  [{p['id']}]"
        + ("" if p["in_stock"] else "  (out of stock)")
        for i, p in enumerate(products, start=1)
    ]
    emit(as_json, {"query": query, "products": products}, "\n".join(lines) or "no products found")


def _money(price: float | None, currency: str) -> str:
    return "" if price is None else f"{price:,.2f} {currency}"


@main.group("eval")
def eval_group() -> None:
    """Offline evaluation of retrieval and intent parsing."""


@eval_group.command("retrieval")
@click.option(
    "--catalog", "catalog_path", required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--queries", "queries_path", required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option("--qrels", "qrels_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--systems", default="keyword,dense,hybrid,ranked", show_default=True)
@common_options
def eval_retrieval(
    settings,
    as_json: bool,
    catalog_path: Path,
    queries_path: Path,
    qrels_path: Path,
    k: int,
    systems: str,
) -> None:
    """Score retrieval systems side by side on a labelled query set.

    The catalog is ingested into a fresh temporary store; every query runs through each
    system; nDCG, recall, MRR and latency are reported per system.

    Example usage: shopbot eval retrieval --catalog c.jsonl --queries q.jsonl --qrels q.tsv --json
    """
    from retrieval.evaluate import evaluate_retrieval

    names = [s.strip() for s in systems.split(",") if s.strip()]
    result = evaluate_retrieval(
        settings,
        catalog_path,
        queries_path,
        qrels_path,
        systems=names,
        k=k,
        progress=sys.stderr.isatty(),
    )
    metrics = [
        f"ndcg@{k}",
        f"recall@{k}",
        "recall@100",
        f"mrr@{k}",
        "latency_ms_p50",
        "latency_ms_p95",
    ]
    rows = [f"{'system':<10}" + "".join(f"{m:>16}" for m in metrics)]
    for name, values in result["systems"].items():
        rows.append(f"{name:<10}" + "".join(f"{values[m]:>16}" for m in metrics))
    header = f"{result['queries']} queries, {result['products']} products"
    emit(as_json, result, "\n".join([header, *rows]))


@main.group("scorer")
def scorer_group() -> None:
    """The recommendation scorer's learnt weights."""


@scorer_group.command("train")
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5))
@click.option("--l2", default=1.0, show_default=True, type=click.FloatRange(0))
@common_options
def scorer_train(settings, as_json: bool, holdout: float, l2: float) -> None:
    """Fit the feature weights to logged impressions and feedback; save a new version.

    The newest examples are held out; the report compares the new weights' AUC on them with
    the weights in use. A running server picks the new version up on its next request.

    Example usage: shopbot scorer train --json
    """
    from retrieval.events import EventStore
    from retrieval.learning import WeightStore, train_weights

    store = WeightStore(Path(settings.data_dir) / "scorer")
    current = store.latest()
    events = EventStore(Path(settings.data_dir) / "events.sqlite")
    try:
        rows = events.training_rows()
    finally:
        events.close()
    weights, metrics = train_weights(
        rows, current=current.weights if current else None, holdout=holdout, l2=l2
    )
    trained = store.save(weights, metrics, examples=len(rows))
    report = {"version": trained.version, "weights": weights, "metrics": metrics}
    text = [f"saved scorer weights version {trained.version} ({len(rows)} examples)"]
    text += [f"  {name}: {value}" for name, value in metrics.items()]
    emit(as_json, report, "\n".join(text))


@scorer_group.command("show")
@common_options
def scorer_show(settings, as_json: bool) -> None:
    """Print the weights in use, their version and held-out metrics.

    Example usage: shopbot scorer show --json
    """
    from dataclasses import asdict

    from retrieval.learning import WeightStore
    from retrieval.ranking import DEFAULT_WEIGHTS

    trained = WeightStore(Path(settings.data_dir) / "scorer").latest()
    report = asdict(trained) if trained else {"version": 0, "weights": DEFAULT_WEIGHTS}
    lines = [f"version {report['version']}"]
    lines += [f"  {name}: {value}" for name, value in report["weights"].items()]
    emit(as_json, report, "\n".join(lines))


@main.group("bench")
def bench_group() -> None:
    """Benchmarks behind the figures in the README."""


@bench_group.command("scorer")
@click.option("--sessions", default=5000, show_default=True, type=click.IntRange(1))
@click.option("--shoppers", default=200, show_default=True, type=click.IntRange(1))
@click.option("--products", default=1200, show_default=True, type=click.IntRange(50))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--exploration",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Sampling strength of the thompson policy.",
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG.")
@common_options
def bench_scorer(
    settings,
    as_json: bool,
    sessions: int,
    shoppers: int,
    products: int,
    seed: int,
    exploration: float,
    plot,
) -> None:
    """Simulated shoppers: static vs greedy vs Thompson-sampling ranking, side by side.

    Example usage: shopbot bench scorer --sessions 5000 --seed 0 --json --plot curves.png
    """
    from retrieval.demo.catalog import generate_catalog
    from retrieval.simulator import ShopperSimulator, plot_curves

    simulator = ShopperSimulator(
        generate_catalog(products, seed=seed),
        shoppers=shoppers,
        exploration=exploration,
        seed=seed,
    )
    result = simulator.run(sessions)
    if plot:
        plot_curves(result["curves"], plot)
    report = {"policies": result["policies"], "personalization": result["personalization"]}
    rows = [f"{'policy':<10}{'ctr':>10}{'regret':>12}{'ndcg@10':>10}"]
    for name, m in report["policies"].items():
        rows.append(f"{name:<10}{m['ctr']:>10}{m['regret']:>12}{m['ndcg@10']:>10}")
    p = report["personalization"]
    rows.append(
        f"returning shoppers nDCG@10: {p['ndcg@10_with_history']} with history, "
        f"{p['ndcg@10_without_history']} without"
    )
    emit(as_json, report, "\n".join(rows))


@main.group("demo")
def demo_group() -> None:
    """The generated demo store."""


@demo_group.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--products", default=1200, show_default=True, type=click.IntRange(1))
@click.option("--queries", default=300, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@common_options
def demo_export(
    settings, as_json: bool, out_dir: Path, products: int, queries: int, seed: int
) -> None:
    """Write the demo catalog with a labelled query set (catalog.jsonl, queries.jsonl, qrels.tsv).

    Example usage: shopbot demo export ./demo && shopbot eval retrieval --catalog
    demo/catalog.jsonl --queries demo/queries.jsonl --qrels demo/qrels.tsv
    """
    from retrieval.demo.queries import write_eval_set

    write_eval_set(out_dir, n_products=products, n_queries=queries, seed=seed)
    files = {name: str(out_dir / name) for name in ("catalog.jsonl", "queries.jsonl", "qrels.tsv")}
    emit(as_json, files, "\n".join(files.values()))


if __name__ == "__main__":
    main()
