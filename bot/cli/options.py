"""What every command shares: --config, --data-dir and --json, errors as messages."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (only on a terminal, so --json output and logs stay clean);
    yields the function that advances it."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update
