"""Personal data never reaches a log: e-mails, card and phone numbers become placeholders."""

from __future__ import annotations

import pytest

from bot.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at ann.lee+shop@example.co.uk please", "mail me at [email] please"),
        ("ANN@EXAMPLE.COM", "[email]"),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("call (555) 123-4567", "call [phone]"),
        ("+1 (555) 123-4567", "[phone]"),
        ("my number is 555.123.4567.", "my number is [phone]."),
        ("ring 5551234", "ring [phone]"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [card] exp 12/29"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("4111111111111112", "[card]"),  # not Luhn-valid, still hidden
        ("a@b.io, 020 7946 0958", "[email], [phone]"),
    ],
)
def test_personal_data_is_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "red running shoes under $89.99",
        "between 50 and 120 dollars",
        "where is order 10234?",
        "order A-1001 from 2024-03-15",
        "size 10.5, 2 pairs",
        "",
    ],
)
def test_ordinary_shopping_text_is_unchanged(text):
    assert redact(text) == text


def test_server_logs_are_redacted_once_installed():
    import io
    import logging

    from bot.redact import redact_logs

    logger = logging.getLogger("shopbot.test-redaction")
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    logger.propagate = False
    redact_logs(logger)

    logger.warning("GET /v1/products/search?q=%s HTTP/1.1", "ann@example.com 4111 1111 1111 1111")

    assert stream.getvalue().strip() == "GET /v1/products/search?q=[email] [card] HTTP/1.1"
