"""`shopbot serve` and `shopbot chat`: the bot on the web, or one conversation here."""

from __future__ import annotations

import json

import click

from bot.cli.options import common_options
from bot.dialogue.grounding import money


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes on the port; 2 or more need database_url and chroma_url.",
)
@common_options
def serve(settings, as_json: bool, host: str, port: int, workers: int) -> None:
    """Start the chat page (/) and the REST API (/v1).

    On first start with an empty store the demo catalog is generated and ingested.

    Example usage: shopbot serve --port 8080
    or, sharing PostgreSQL and a Chroma server (docs/deploy.md):
    SHOPBOT_DATABASE_URL=postgresql://shopbot@db/shopbot SHOPBOT_CHROMA_URL=chroma:8000
    shopbot serve --host 0.0.0.0 --workers 4
    """
    from bot.app import run_server

    run_server(settings, host=host, port=port, workers=workers)


@click.command()
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
    from bot.dialogue.engine import Assistant
    from bot.shop import Shop
    from bot.stores.sessions import new_session_id

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
    from bot.stores.sessions import UnknownSession

    try:
        turn = assistant.start_turn(message, session_id, shopper_id)
    except UnknownSession as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        for _ in assistant.stream_reply(turn):
            pass
        click.echo(json.dumps(turn.to_dict(), ensure_ascii=False))
        return
    for piece in assistant.stream_reply(turn):
        click.echo(piece, nl=False)
    click.echo()
    for number, item in enumerate(turn.products, start=1):
        price = money(item.product.price, item.product.currency)
        click.echo(f"  [{number}] {item.product.title}  {price}  ({item.product.id})")
    click.echo(f"({turn.parse.intent}, session {turn.session_id})", err=True)
