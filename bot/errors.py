"""Errors the bot raises on purpose; the CLI and the API turn them into messages."""


class ShopbotError(Exception):
    """Base class: the message is safe to show to the person who caused it."""


class ConfigError(ShopbotError):
    """A setting or config file is invalid."""
