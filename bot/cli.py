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


@eval_group.command("intents")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-adapter", is_flag=True, help="The base model alone, for comparison.")
@click.option("--limit", type=click.IntRange(1), help="Score only the first N rows.")
@common_options
def eval_intents(
    settings, as_json: bool, data_path: Path, adapter: Path | None, no_adapter: bool, limit
) -> None:
    """Intent accuracy, macro-F1, out-of-scope recall and slot F1 of the parser.

    Rows are {"text", "intent"} (optionally "slots" and "previous"). Uses the shipped
    adapter unless --adapter or --no-adapter says otherwise.

    Example usage: shopbot eval intents --data data/sft/intents.validation.jsonl --json
    """
    from bot.intent_parser import IntentParser
    from bot.lm import load_lm
    from finetune.evaluate import evaluate_intents, read_labelled_rows

    rows, rejected = read_labelled_rows(data_path)
    for line, reason in rejected:
        click.echo(f"{data_path}:{line}: skipped: {reason}", err=True)
    rows = rows[:limit] if limit else rows
    chosen = None if no_adapter else (adapter or settings.adapter_path)
    lm = load_lm(
        settings.lm_model,
        data_dir=settings.data_dir,
        adapter=chosen,
        device=settings.device,
        dtype=settings.lm_dtype,
    )
    result = evaluate_intents(IntentParser(lm, slot_vocabulary(settings)), rows)
    result["adapter"] = str(chosen) if chosen else None
    summary = {k: v for k, v in result.items() if k != "per_intent"}
    emit(as_json, result, "\n".join(f"{k:<22}{v}" for k, v in summary.items()))


def slot_vocabulary(settings):
    """The catalog's slot values: the store's when it holds products, else the demo's."""
    from bot.intent_parser import SlotVocabulary
    from retrieval.demo.catalog import generate_catalog
    from retrieval.records import ProductRecords

    path = Path(settings.data_dir) / f"{settings.collection}.sqlite"
    if path.is_file():
        records = ProductRecords(path)
        try:
            if records.count():
                return SlotVocabulary(records.slot_values())
        finally:
            records.close()
    return SlotVocabulary.from_products(generate_catalog(settings.demo_products))


@main.command()
@click.argument("message", required=False)
@click.option("--session", "session_id", help="Continue this conversation (default: a new one).")
@click.option("--shopper", "shopper_id", help="Shopper id, for personal ranking.")
@common_options
def chat(settings, as_json: bool, message: str | None, session_id, shopper_id) -> None:
    """Chat with the assistant: one turn with MESSAGE, or a conversation without it.

    The reply, the parsed intent and slots, and the products shown. Without MESSAGE the
    conversation goes on line by line until an empty line, "quit" or Ctrl-D.

    Example usage: shopbot chat "waterproof hiking boots under 150" --session s1
    then: shopbot chat "cheaper ones?" --session s1
    """
    from bot.dialogue import Assistant, new_session_id
    from bot.shop import Shop

    shop = Shop(settings)
    shop.ensure_demo_catalog()
    assistant = Assistant.open(settings, shop)
    session_id = session_id or new_session_id("cli-")
    try:
        if message is not None:
            _chat_turn(assistant, message, session_id, shopper_id, as_json)
            return
        click.echo(f"Chatting with {settings.store_name} (empty line or 'quit' ends).", err=True)
        while True:
            try:
                line = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
            except (EOFError, click.Abort):
                break
            if line.strip().lower() in ("", "quit", "exit"):
                break
            _chat_turn(assistant, line, session_id, shopper_id, as_json)
    finally:
        assistant.close()
        shop.close()


def _chat_turn(assistant, message: str, session_id: str, shopper_id, as_json: bool) -> None:
    from bot.dialogue import UnknownSession

    try:
        turn = assistant.start_turn(message, session_id, shopper_id)
    except UnknownSession as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        turn.run()
        click.echo(json.dumps(turn.to_dict(), ensure_ascii=False))
        return
    for piece in turn.stream():
        click.echo(piece, nl=False)
    click.echo()
    for number, item in enumerate(turn.products, start=1):
        price = _money(item.product.price, item.product.currency or "USD")
        click.echo(f"  [{number}] {item.product.title}  {price}  ({item.product.id})")
    click.echo(f"({turn.parse.intent}, session {turn.session_id})", err=True)


@main.group("finetune")
def finetune_group() -> None:
    """Build the SFT dataset and train a LoRA adapter for the LM."""


@finetune_group.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data/sft"))
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(exists=True, path_type=Path),
    help="Catalog JSONL/CSV for the shopping requests [default: the demo's].",
)
@click.option(
    "--shared-data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of customer_support_intents / out_of_scope JSONL [../shared/data].",
)
@click.option("--shopping", default=5000, show_default=True, type=click.IntRange(1))
@click.option("--replies", default=1500, show_default=True, type=click.IntRange(0))
@click.option("--seed", default=0, show_default=True, type=int)
@common_options
def finetune_build(
    settings, as_json: bool, out: Path, catalog_path, shared_data, shopping, replies, seed
) -> None:
    """Write train.jsonl, validation.jsonl and intents.validation.jsonl.

    Logged turns whose products the shopper liked or bought are added when there are any.

    Example usage: shopbot finetune build --out data/sft --catalog my_catalog.jsonl
    """
    from transformers import AutoTokenizer

    from bot.lm import resolve_model
    from finetune.dataset import SHARED_DATA, DatasetSizes, build_dataset, logged_turns
    from retrieval.policies import load_policy_docs

    products = load_catalog_products(settings, catalog_path)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(settings.lm_model, settings.data_dir))
    sizes = DatasetSizes(shopping_train=shopping, replies_train=replies)
    info = build_dataset(
        tokenizer,
        products,
        load_policy_docs(settings.policies_dir),
        out,
        shared_data=shared_data or SHARED_DATA,
        logged=logged_turns(Path(settings.data_dir)),
        sizes=sizes,
        seed=seed,
    )
    emit(as_json, info, json.dumps(info, indent=2))


def load_catalog_products(settings, catalog_path: Path | None) -> list:
    from retrieval.demo.catalog import generate_catalog
    from retrieval.ingest import CatalogReader

    if catalog_path is None:
        return generate_catalog(settings.demo_products)
    reader = CatalogReader(catalog_path)
    products = [row.product for row in reader.rows()]
    for issue in reader.rejected:
        click.echo(f"{catalog_path}:{issue.line}: skipped: {issue.reason}", err=True)
    return products


@finetune_group.command("train")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--validation", type=click.Path(exists=True, path_type=Path))
@click.option("--epochs", default=2.0, show_default=True, type=float)
@click.option("--max-steps", default=0, show_default=True, type=click.IntRange(0))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--learning-rate", default=1e-3, show_default=True, type=float)
@click.option("--lora-r", default=8, show_default=True, type=click.IntRange(1))
@click.option("--checkpoint-every", default=200, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@common_options
def finetune_train(settings, as_json: bool, data_path: Path, out: Path, **options) -> None:
    """Train a LoRA adapter (GPU when there is one); rerun to resume from its checkpoint.

    Example usage: shopbot finetune train --data data/sft/train.jsonl --out adapters/mine
    --validation data/sft/validation.jsonl, then: SHOPBOT_LM_ADAPTER=adapters/mine shopbot serve
    """
    from finetune.train import TrainConfig, train

    config = TrainConfig(
        data=data_path,
        out=out,
        base_model=settings.lm_model,
        data_dir=settings.data_dir,
        device=settings.device,
        lora_alpha=2 * options["lora_r"],
        **options,
    )
    manifest = train(config, progress=not as_json)
    emit(as_json, manifest, json.dumps(manifest, indent=2))


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
