"""Hide personal data in text before it reaches a log: e-mail addresses, card and phone numbers.

    >>> redact("I'm ann@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111")
    "I'm [email], call [phone], card [card]"

It errs on the side of hiding: any run of 13 to 19 digits (spaces or dashes between them
allowed) counts as a card, Luhn-valid or not, and any other run of 7 to 15 digits joined by
spaces, dots, dashes or brackets counts as a phone number. Prices ("$89.99"), short order
numbers, years and ISO dates are left alone. It does not find names or postal addresses.
"""

from __future__ import annotations

import logging
import re

from bot.intent_schema import EMAIL

CARD = re.compile(r"(?<![\w.])\d(?:[ -]?\d){12,18}(?![\w])")
PHONE = re.compile(r"(?<![\w.$€£])(?:\+|\(\+?)?\d[\d ().-]{4,}\d(?![\w])")
PHONE_DIGITS = (7, 15)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def redact(text: str) -> str:
    """`text` with e-mail addresses, card numbers and phone numbers replaced by "[email]",
    "[card]" and "[phone]"."""
    text = EMAIL.sub("[email]", text)
    text = CARD.sub("[card]", text)
    return PHONE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    digits = sum(char.isdigit() for char in match.group())
    low, high = PHONE_DIGITS
    if ISO_DATE.fullmatch(match.group()) or not low <= digits <= high:
        return match.group()
    return "[phone]"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (arguments filled in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_logs(*loggers: logging.Logger) -> None:
    """Install RedactingFilter on the root logger's handlers and on these loggers, so no
    e-mail, phone or card number from a message or URL is written to a log."""
    redacting = RedactingFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    for logger in loggers:
        logger.addFilter(redacting)
        for handler in logger.handlers:
            handler.addFilter(redacting)
