"""The composition root: settings in, a running bot out.

    from bot.app import create_app
    app = create_app(load_settings())      # any ASGI server can run it

`shopbot serve` runs it with uvicorn (`run_server`). On first start with an empty catalog
the generated demo catalog is ingested, so a fresh install has something to show.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from bot.channels.access import is_loopback
from bot.channels.http import build_app
from bot.dialogue.service import ChatService
from bot.errors import ConfigError
from bot.settings import Settings
from bot.shop import Shop

log = logging.getLogger("shopbot.server")


def create_app(
    settings: Settings,
    *,
    shop: Shop | None = None,
    ui: bool = True,
    chats: ChatService | None = None,
    preload_lm: bool = True,
) -> Any:
    """The web app: the page at `/`, REST under `/v1`, health at `/healthz`. Pass `shop` or
    `chats` to reuse ones already open (tests, benchmarks)."""
    shop = shop or Shop(settings)
    chats = chats or ChatService(settings, shop)
    return build_app(settings, shop, chats, ui=ui, preload_lm=preload_lm)


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to serve the open API (no keys) on an address others can reach, unless the
    operator says so with `allow_open_access`. Raises ConfigError saying what to set."""
    keyed = bool(settings.chat_keys or settings.admin_keys)
    if keyed or is_loopback(host) or settings.allow_open_access:
        return
    raise ConfigError(
        f"refusing to serve on {host} with no API keys: anyone who can reach it could use "
        "every /v1 chat route. Set SHOPBOT_CHAT_KEYS and SHOPBOT_ADMIN_KEYS (the chat page "
        "and widget stay public), or SHOPBOT_ALLOW_OPEN_ACCESS=true if you mean it."
    )


def server_config(app: Any, **options: Any):
    """uvicorn's config for the app. X-Forwarded-For is believed only from
    `trusted_proxies` (see `bot.channels.http`), never, as uvicorn's default would, from
    any loopback client: behind no proxy, anyone could name any address and escape the
    rate limit."""
    import uvicorn

    return uvicorn.Config(app, proxy_headers=False, **options)


# How `shopbot serve --workers N` hands its settings to the worker processes it starts.
WORKER_SETTINGS = "SHOPBOT_WORKER_SETTINGS"


def run_server(
    settings: Settings, host: str = "127.0.0.1", port: int = 7860, workers: int = 1
) -> None:
    """Serve the app with uvicorn; with `workers` > 1, that many processes on one port,
    which share the store through `database_url` and `chroma_url`."""
    import uvicorn

    from bot.redact import redact_logs

    check_exposure(settings, host)
    log.info("shopbot on http://%s:%s (data in %s)", host, port, settings.data_dir)
    if workers > 1:
        check_shared(settings, workers)
        prepare_shared_store(settings)
        os.environ[WORKER_SETTINGS] = settings.model_dump_json()
        uvicorn.run(
            "bot.app:worker_app", factory=True, host=host, port=port, workers=workers,
            proxy_headers=False, log_level="info",
        )  # fmt: skip
        return
    config = server_config(create_app(settings), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)  # the config sets up uvicorn's loggers; then redact them
    redact_logs(*(logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")))
    server.run()


def check_shared(settings: Settings, workers: int) -> None:
    """Several workers act as one bot only on shared stores: refuse without them."""
    missing = [name for name in ("database_url", "chroma_url") if not getattr(settings, name)]
    if missing:
        raise ConfigError(
            f"--workers {workers} needs shared stores, so that every worker sees the same "
            f"conversations and catalog: set {' and '.join(n.upper() for n in missing)} "
            "(SHOPBOT_DATABASE_URL=postgresql://..., SHOPBOT_CHROMA_URL=host:port; see "
            "docs/deploy.md)"
        )


def prepare_shared_store(settings: Settings) -> None:
    """What the first start does once, before the workers start together: the demo catalog
    of an empty store, and the default LM's conversion (each worker would redo both)."""
    shop = Shop(settings)
    try:
        shop.ensure_demo_catalog()
    finally:
        shop.close()
    from bot.lm.loading import resolve_model  # the parser's tokenizer, at least, comes from it

    resolve_model(settings.lm_model, settings.data_dir)


def worker_app() -> Any:
    """The app of one worker process of `shopbot serve --workers N` (uvicorn's factory)."""
    from bot.redact import redact_logs

    redact_logs(*(logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")))
    return create_app(Settings.model_validate_json(os.environ[WORKER_SETTINGS]))
