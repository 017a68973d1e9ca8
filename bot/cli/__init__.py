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

import click

from bot.cli.catalog import ingest, remove, search
from bot.cli.evaluation import eval_group
from bot.cli.serving import chat, serve
from bot.cli.training import bench_group, demo_group, finetune_group, scorer_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shopbot")
def main() -> None:
    """shopbot: a conversational shopping and customer-service assistant."""


for command in (serve, ingest, remove, search, eval_group, chat, finetune_group, scorer_group,
                bench_group, demo_group):  # fmt: skip
    main.add_command(command)


if __name__ == "__main__":
    main()
