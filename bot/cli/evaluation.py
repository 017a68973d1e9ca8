"""`shopbot eval`: retrieval and intent quality on labelled data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bot.cli.options import common_options, emit, progress_bar


@click.group("eval")
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
    adapter, with the intent head's second opinion as the bot does (setting intent_head),
    unless --adapter or --no-adapter says otherwise. With lm_parse_on_server set, the
    parse runs on lm_url (the adapter is the one merged into what the server serves).

    Example usage: shopbot eval intents --data data/sft/intents.validation.jsonl --json
    """
    from bot.lm.loading import load_lm, load_tokenizer
    from bot.lm.server import parse_server
    from bot.nlu.parser import IntentParser
    from bot.nlu.second_opinion import SecondOpinion
    from finetune.evaluate import evaluate_intents, read_labelled_rows
    from retrieval.index import open_embedder

    rows, rejected = read_labelled_rows(data_path)
    for line, reason in rejected:
        click.echo(f"{data_path}:{line}: skipped: {reason}", err=True)
    rows = rows[:limit] if limit else rows
    chosen = None if no_adapter else (adapter or settings.adapter_path)
    server = parse_server(settings)
    if server is not None:
        lm = load_tokenizer(settings.lm_model, data_dir=settings.data_dir)
    else:
        lm = load_lm(
            settings.lm_model,
            data_dir=settings.data_dir,
            adapter=chosen,
            device=settings.device,
            dtype=settings.lm_dtype,
        )
    second = None  # the intent head goes with the shipped adapter, as in the bot
    if chosen == settings.adapter_path and chosen is not None:
        second = SecondOpinion.open(settings, open_embedder(settings).embed_query)
    parser = IntentParser(lm, slot_vocabulary(settings), second_opinion=second, server=server)
    with progress_bar(len(rows), "intents") as advance:
        result = evaluate_intents(parser, rows, progress=advance)
    result["adapter"] = str(chosen) if chosen else None
    result["lm_server"] = server.url if server else None
    result["intent_head"] = str(settings.intent_head_path) if second else None
    summary = {k: v for k, v in result.items() if k != "per_intent"}
    emit(as_json, result, "\n".join(f"{k:<22}{v}" for k, v in summary.items()))


@eval_group.command("conversations")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--only",
    "prefixes",
    multiple=True,
    metavar="PREFIX",
    help="Replay only conversations whose id starts with PREFIX (repeatable).",
)
@common_options
def eval_conversations(settings, as_json: bool, data_path: Path, prefixes: tuple[str, ...]) -> None:
    """Replay scripted conversations and check every turn against its expectations.

    One conversation per JSON line: {"id", "turns": [{"say", "expect": {...}}]}; see
    `bot.dialogue.scripted` for the expectations (intent, route, section, type, colour,
    price_max, contains, ...). A file holding one JSON array is read as recorded dialogues
    in MG-ShopDial's layout, their "Client" utterances replayed as the shopper's turns. Runs
    on this store's catalog, policies and model; the sessions it makes are erased
    afterwards. Prints the turns and conversations that pass, the turns refused or not
    understood, the turns silenced by a handoff nobody asked for, each handoff, and each
    failure.

    Example usage: shopbot eval conversations --data benchmarks/conversations/demo_store.jsonl

    Real dialogues: shopbot eval conversations --data MGShopDial.json --only Officeproducts
    --only SportsandOutdoors
    """
    from bot.dialogue.engine import Assistant
    from bot.dialogue.scripted import read_scripts, replay
    from bot.shop import Shop

    scripts, rejected = read_scripts(data_path)
    for line, reason in rejected:
        click.echo(f"{data_path}:{line}: skipped: {reason}", err=True)
    if prefixes:
        scripts = [script for script in scripts if script.id.startswith(prefixes)]
        if not scripts:
            raise click.UsageError(f"no conversation's id starts with {' or '.join(prefixes)}")
    shop = Shop(settings)
    shop.ensure_demo_catalog()
    assistant = Assistant.open(settings, shop)
    try:
        with progress_bar(sum(len(s.turns) for s in scripts), "turns") as advance:
            result = replay(assistant, scripts, progress=advance)
    finally:
        assistant.close()
        shop.close()
    turns = max(result["turns"], 1)
    lines = [
        f"turns         {result['turns_passed']}/{result['turns']} passed",
        f"conversations {result['conversations_passed']}/{result['conversations']} passed",
        f"false claims  {result['false_claims']}",
        f"refused or not understood  {result['refused_or_clarify']} turns"
        f" ({result['refused_or_clarify'] / turns:.1%})",
        f"silenced by a handoff nobody asked for  {result['silenced_unasked']} turns"
        f" ({result['silenced_unasked'] / turns:.1%})",
        "routes        " + ", ".join(f"{k} {v}" for k, v in result["routes"].items()),
    ]
    for turn in result["refused"]:
        lines.append(
            f"{turn['route']}: {turn['conversation']} turn {turn['turn']}: {turn['message']!r}"
        )
    for handoff in result["handoffs"]:
        lines.append(
            f"handoff ({handoff['reason']}): {handoff['conversation']} turn {handoff['turn']}:"
            f" {handoff['message']!r}"
        )
    for failure in result["failures"]:
        lines.append(f"\n{failure['conversation']} turn {failure['turn']}: {failure['message']!r}")
        lines.append(f"  -> [{failure['route']}/{failure['intent']}] {failure['reply'][:200]}")
        lines += [f"  x {reason}" for reason in failure["failures"]]
    emit(as_json, result, "\n".join(lines))


def slot_vocabulary(settings):
    """The catalog's slot values: the store's when it holds products, else the demo's."""
    from bot.nlu.parser import SlotVocabulary
    from bot.shop import Shop
    from retrieval.demo.catalog import generate_catalog

    shop = Shop(settings)
    try:
        if shop.product_count():
            return SlotVocabulary(shop.slot_values())
    finally:
        shop.close()
    return SlotVocabulary.from_products(generate_catalog(settings.demo_products))
