"""`shopbot finetune`, `scorer`, `bench` and `demo`: training data, models, simulations."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli.options import common_options, emit, progress_bar
from finetune.export import GGUF_TYPES

catalog_option = click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(exists=True, path_type=Path),
    help="Catalog JSONL/CSV for the shopping requests [default: the demo's].",
)
shared_data_option = click.option(
    "--shared-data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of customer_support_intents / out_of_scope JSONL [../shared/data].",
)


@click.group("finetune")
def finetune_group() -> None:
    """Build the SFT dataset and train a LoRA adapter for the LM."""


@finetune_group.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data/sft"))
@catalog_option
@shared_data_option
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

    from bot.lm.loading import resolve_model
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
        logged=logged_turns(settings.sessions_path, settings.events_path),
        sizes=sizes,
        seed=seed,
    )
    emit(as_json, info, json.dumps(info, indent=2))


@finetune_group.command("intent-head")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="[the shipped adapter folder]"
)
@catalog_option
@shared_data_option
@common_options
def finetune_intent_head(settings, as_json: bool, out, catalog_path, shared_data) -> None:
    """Train the parser's second opinion: an intent classifier over sentence embeddings.

    Uses the store's embedding model and the same train/validation split as `finetune
    build`; prints its held-out accuracy.

    Example usage: shopbot finetune intent-head --out finetune/adapters/default
    """
    from finetune import DEFAULT_ADAPTER
    from finetune.dataset import SHARED_DATA
    from finetune.intent_head import train_head
    from retrieval.index import open_embedder

    card = train_head(
        open_embedder(settings),
        load_catalog_products(settings, catalog_path),
        out or DEFAULT_ADAPTER,
        embedding_model=settings.embedding_model,
        shared_data=shared_data or SHARED_DATA,
    )
    emit(as_json, card, json.dumps(card, indent=2))


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


@finetune_group.command("export")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="LoRA adapter to merge [default: the configured one, lm_adapter].",
)
@click.option("--gguf-type", type=click.Choice(GGUF_TYPES), default="q8_0", show_default=True)
@click.option(
    "--gguf-source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The base model's GGUF, for its metadata [default: the shipped SmolLM2 file].",
)
@common_options
def finetune_export(settings, as_json: bool, out: Path, adapter, gguf_type, gguf_source) -> None:
    """Write the LM with its adapter merged, for an inference server: OUT/merged/
    (safetensors + tokenizer, for vLLM) and OUT/shopbot.<type>.gguf (for llama.cpp).

    Example usage: shopbot finetune export --out exported, then:
    llama-server -m exported/shopbot.q8_0.gguf --port 8080 and
    SHOPBOT_LM_URL=http://localhost:8080/v1 SHOPBOT_LM_PARSE_ON_SERVER=1 shopbot serve
    """
    from finetune.export import export_lm

    exported = export_lm(
        out,
        model=settings.lm_model,
        adapter=adapter or settings.adapter_path,
        data_dir=settings.data_dir,
        gguf_type=gguf_type,
        gguf_source=gguf_source,
    )
    document = exported.to_dict()
    emit(as_json, document, json.dumps(document, indent=2))


@click.group("scorer")
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
    from retrieval.learning import open_weight_store, train_weights

    store = open_weight_store(settings.scorer_dir, settings.database_url)
    current = store.latest()
    events = EventStore(settings.events_path)
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

    from retrieval.learning import open_weight_store
    from retrieval.ranking import DEFAULT_WEIGHTS

    trained = open_weight_store(settings.scorer_dir, settings.database_url).latest()
    report = asdict(trained) if trained else {"version": 0, "weights": DEFAULT_WEIGHTS}
    lines = [f"version {report['version']}"]
    lines += [f"  {name}: {value}" for name, value in report["weights"].items()]
    emit(as_json, report, "\n".join(lines))


@click.group("bench")
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
    from retrieval.simulator import POLICIES, ShopperSimulator, plot_curves

    simulator = ShopperSimulator(
        generate_catalog(products, seed=seed),
        shoppers=shoppers,
        exploration=exploration,
        seed=seed,
    )
    with progress_bar(sessions * len(POLICIES), "sessions") as advance:
        result = simulator.run(sessions, progress=advance)
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


@click.group("demo")
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
