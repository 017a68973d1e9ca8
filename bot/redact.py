"""Hide personal data and secrets in text before it reaches a log or a stored transcript.

    >>> redact("I'm ann@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111")
    "I'm [email], call [phone], card [card]"
    >>> redact("POST /v1/helpdesk/chatwoot?token=s3cr3t&email=ann%40example.com")
    'POST /v1/helpdesk/chatwoot?token=[secret]&email=[email]'

`redact` errs on the side of hiding: any run of 13 to 19 digits (spaces or dashes between them
allowed) counts as a card, Luhn-valid or not, and any other run of 7 to 15 digits joined by
spaces, dots, dashes or brackets counts as a phone number, so an 8-digit order number in a URL
is logged as "[phone]". Prices ("$89.99"), short order numbers, years and ISO dates are left
alone. A word with percent-escapes (or, after a "?", a "+" for a space) is searched decoded,
and written decoded only where something in it was hidden. The values of secret query
parameters (`strip_secrets`) become "[secret]". It does not find names or postal addresses.

`redact_logs` installs it on logging handlers: a `RedactingFormatter` redacts each formatted
line, tracebacks included, and a `RedactingFilter` redacts the record's own parts in place.

Stored transcripts keep what the shop needs to help: `redact_payment` hides card numbers and
IBANs only, `redact_email` e-mail addresses only.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from urllib.parse import quote, unquote

# An e-mail address in free text (fullmatch it to validate one); the slot schema uses it too.
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

CARD = re.compile(r"(?<![\w.])\d(?:[ -]?\d){12,18}(?![\w])")
PHONE = re.compile(r"(?<![\w.$€£])(?:\+|\(\+?)?\d[\d ().-]{4,}\d(?![\w])")
PHONE_DIGITS = (7, 15)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IBAN = re.compile(
    r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4})+(?: ?[A-Z0-9]{1,3})?(?![A-Z0-9])",
    re.IGNORECASE,
)
IBAN_CHARS = (10, 30)  # after the country code and check digits
SECRET_NAMES = ("token", "access_token", "api_key", "apikey", "key", "secret", "password")
SECRET_NAMES += ("signature", "sig")  # the parameters strip_secrets hides, any case
SECRET_PARAM = re.compile(
    rf"(?<!\w)((?:{'|'.join(SECRET_NAMES)})=)[^\s&#;\"'<>\x00-\x1f\x7f]+", re.IGNORECASE
)
WORD = re.compile(r"[^\s\"'<>]+")
PERCENT_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
EMAIL_START = re.compile(rf"(?<![\w.+-])(?:{EMAIL.pattern})", EMAIL.flags)


def redact(text: str) -> str:
    """`text` with secret query values, e-mail addresses, IBANs, card numbers and phone
    numbers replaced by "[secret]", "[email]", "[iban]", "[card]" and "[phone]",
    percent-encoded ones too."""
    return _redact_plain(WORD.sub(_redact_encoded, text))


def strip_secrets(text: str) -> str:
    """`text` with the value of each `token`, `access_token`, `api_key`, `apikey`, `key`,
    `secret`, `password`, `signature` or `sig` parameter (any case) replaced by "[secret]":

        >>> strip_secrets("/hook?Token=abc%2Bdef&page=2#sig=x")
        '/hook?Token=[secret]&page=2#sig=[secret]'

    The value runs to the next "&", "#", ";", quote or space. It does not decode the text
    (`redact` does) nor find secrets in headers or JSON ("token": "...")."""
    return SECRET_PARAM.sub(r"\1[secret]", text)


def redact_payment(text: str) -> str:
    """`text` with card numbers (as `redact` finds them) replaced by "[card]" and IBANs (two
    letters, two digits, then 10 to 30 letters and digits, spaces allowed between groups of
    four, at least half of them digits) by "[iban]". E-mail addresses, phone numbers, order
    numbers and prices are kept, for a transcript that the shop reads back.

        >>> redact_payment("order 12345678, IBAN GB82 WEST 1234 5698 7654 32, 4111111111111111")
        'order 12345678, IBAN [iban], [card]'
    """
    return CARD.sub("[card]", IBAN.sub(_iban, text))


def redact_email(text: str) -> str:
    """`text` with e-mail addresses (`EMAIL`) replaced by "[email]"; nothing
    else changes."""
    return _redact_emails(text)


def _redact_plain(text: str) -> str:
    text = _redact_emails(strip_secrets(text))
    return PHONE.sub(_phone, CARD.sub("[card]", IBAN.sub(_iban, text)))


def _redact_encoded(match: re.Match[str]) -> str:
    word = strip_secrets(match.group())  # first, while an encoded "&" cannot end a value
    if "%" not in word and not ("?" in word and "+" in word):
        return word
    decoded = _decode(word)
    cleaned = _redact_plain(decoded)
    return cleaned if cleaned != decoded else word


def _decode(word: str) -> str:
    """`word` decoded as a server reads it: percent-escapes everywhere, "+" as a space in the
    query, except where a "+" that should have come as %2B is part of an e-mail address."""
    path, mark, query = word.partition("?")
    pieces = [_unquote(piece) for piece in query.split("+")]
    spaced, plussed = " ".join(pieces), "+".join(pieces)  # the same length, one for one
    for address in _emails(plussed):
        spaced = spaced[: address.start()] + address.group() + spaced[address.end() :]
    return _unquote(path) + mark + spaced


def _redact_emails(text: str) -> str:
    kept, end = [], 0
    for address in _emails(text):
        kept += [text[end : address.start()], "[email]"]
        end = address.end()
    return "".join(kept) + text[end:]


def _emails(text: str) -> Iterator[re.Match[str]]:
    """The matches of EMAIL.finditer(text), in linear time: EMAIL alone tries each letter of a
    long word as the start of an address (0.4 s for a 16 KB URL, enough to stall a server).
    An address starts where a run of address characters does, or right after the last one."""
    position = 0
    while address := EMAIL.match(text, position) or EMAIL_START.search(text, position):
        yield address
        position = address.end()


def _unquote(text: str) -> str:
    # Decode up to three times, for URLs passed inside URLs, but keep a decoded line break or
    # other control character escaped, so that a request cannot forge a log line.
    for _ in range(3):
        decoded = PERCENT_ESCAPES.sub(lambda run: _escape_controls(unquote(run.group())), text)
        if decoded == text:
            break
        text = decoded
    return text


def _escape_controls(text: str) -> str:
    return "".join(
        quote(char) if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in text
    )


def _phone(match: re.Match[str]) -> str:
    digits = sum(char.isdigit() for char in match.group())
    low, high = PHONE_DIGITS
    if ISO_DATE.fullmatch(match.group()) or not low <= digits <= high:
        return match.group()
    return "[phone]"


def _iban(match: re.Match[str]) -> str:
    account = match.group()[4:].replace(" ", "")
    low, high = IBAN_CHARS
    digits = sum(char.isdigit() for char in account)
    return "[iban]" if low <= len(account) <= high and 2 * digits >= len(account) else match.group()


class RedactingFormatter(logging.Formatter):
    """Formats a record with `wrapped` (the handler's own formatter, so uvicorn's colours and
    layout stay) and redacts the line it returns, traceback and stack included."""

    def __init__(self, wrapped: logging.Formatter | None = None) -> None:
        super().__init__()
        self.wrapped = wrapped if wrapped is not None else logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.wrapped.format(record))


class RedactingFilter(logging.Filter):
    """Redacts a record's own parts in place, for whatever reads them besides the formatter:
    a str message and each str argument of a tuple or dict. The arguments keep their shape
    (uvicorn's access formatter unpacks five of them). A message that no longer formats with
    its arguments once redacted ("?token=%s") is put back; a record this cannot handle is
    left as it came."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg, args = record.msg, record.args
        try:
            record.args = _redact_args(args)
            if isinstance(msg, str):
                record.msg = redact(msg)
                if record.msg != msg and not _formats(record):
                    record.msg = msg
        except Exception:
            record.msg, record.args = msg, args
        return True


def _redact_args(args: object) -> object:
    if isinstance(args, tuple):
        return tuple(redact(arg) if isinstance(arg, str) else arg for arg in args)
    if isinstance(args, Mapping):
        return {key: redact(arg) if isinstance(arg, str) else arg for key, arg in args.items()}
    return args


def _formats(record: logging.LogRecord) -> bool:
    try:
        record.getMessage()
    except Exception:
        return False
    return True


def redact_logs(*loggers: logging.Logger) -> None:
    """Wrap the formatter of each handler of the root logger and of `loggers` and their
    ancestors (where their records propagate: "uvicorn.error" has none of its own, "uvicorn"
    has) in a RedactingFormatter, and add a RedactingFilter to `loggers`, so no secret, e-mail,
    phone or card number from a message, URL or traceback is written to a log. Calling it
    again wraps nothing twice; a handler added or given a formatter later is not covered."""
    for handler in _handlers(logging.getLogger(), *loggers):
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))
    for logger in loggers:
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


def _handlers(*loggers: logging.Logger) -> list[logging.Handler]:
    found: list[logging.Handler] = []
    for logger in loggers:
        current: logging.Logger | None = logger
        while current is not None:
            found += [handler for handler in current.handlers if handler not in found]
            current = current.parent if current.propagate else None
    return found
