"""Reading catalog files row by row, with a clear reason for every row that is turned away.

CSV (header row, DESIGN.md column names) and JSONL (one object per line) stream from disk.
Each row is validated on its own: a bad row is reported with its line number and reason and
the good rows go on. Bytes that are not UTF-8 are read as Windows-1252 with a warning, so an
export from a spreadsheet still loads.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from retrieval.catalog import KNOWN_FIELDS, Product, product_from_row
from retrieval.errors import CatalogFileError

REQUIRED_COLUMNS = ("id", "title")
# Headers operators often use, to suggest the right name in the error message.
COLUMN_HINTS = {
    "name": "title",
    "product_name": "title",
    "product": "title",
    "sku": "id",
    "product_id": "id",
    "item_id": "id",
    "cost": "price",
}
csv.field_size_limit(64 * 1024 * 1024)  # a 1 MB field is read (then cut), not fatal


@dataclass
class RowIssue:
    line: int
    reason: str
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.id, "reason": self.reason}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.id})" if self.id else "")
        return f"{where}: {self.reason}"


@dataclass
class ValidRow:
    line: int
    product: Product


@dataclass
class IngestReport:
    """What one ingest did. `rejected` rows were not stored; `warnings` rows were."""

    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "rejected": len(self.rejected),
            "seconds": round(self.seconds, 3),
            "rejected_rows": [r.to_dict() for r in self.rejected],
            "warnings": [w.to_dict() for w in self.warnings],
        }


class ByteCounter:
    """Decoded lines of a binary file, counting bytes read for a progress bar."""

    def __init__(self, path: Path, warnings: list[RowIssue]) -> None:
        self.path = path
        self.bytes_read = 0
        self._warnings = warnings

    def lines(self) -> Iterator[tuple[int, str]]:
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                self.bytes_read += len(raw)
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    text = raw.decode("cp1252", errors="replace")
                    self._warnings.append(
                        RowIssue(
                            number,
                            f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column "
                            f"{exc.start + 1}); read as Windows-1252, check the file's encoding",
                        )
                    )
                yield number, text


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def _check_not_empty(path: Path) -> None:
    if not path.exists():
        raise CatalogFileError(f"{path}: no such file")
    if path.is_dir():
        raise CatalogFileError(f"{path}: is a folder, expected a CSV or JSONL file")
    with path.open("rb") as handle:
        if not handle.read(65536).strip():
            raise CatalogFileError(f"{path.name}: the file is empty, no header and no products")


def _csv_rows(
    counter: ByteCounter, delimiter: str
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    lines = counter.lines()
    current = {"line": 0}

    def text_lines() -> Iterator[str]:
        for number, text in lines:
            current["line"] = number
            yield text

    reader = csv.reader(text_lines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogFileError(f"{counter.path.name}: the file is empty") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        hints = [f"{c!r} -> {COLUMN_HINTS[c]!r}" for c in columns if COLUMN_HINTS.get(c) in missing]
        message = (
            f"{counter.path.name}: the header has no {' or '.join(repr(m) for m in missing)} "
            f"column (found: {', '.join(repr(h) for h in header[:12])}). "
            f"Expected columns: {', '.join(KNOWN_FIELDS)}."
        )
        if hints:
            message += f" Rename {', '.join(hints)}."
        raise CatalogFileError(message)
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise CatalogFileError(
            f"{counter.path.name}: the header repeats column(s) {', '.join(duplicates)}"
        )
    while True:
        start = current["line"] + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, f"unreadable CSV row: {exc}"
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            yield (
                start,
                None,
                f"expected {len(columns)} fields, found {len(values)} (check quotes and commas)",
            )
            continue
        yield start, dict(zip(columns, values, strict=True)), None


def _jsonl_rows(counter: ByteCounter) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    for number, text in counter.lines():
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        except ValueError:  # Python refuses to read integers of over 4,300 digits
            yield number, None, "not valid JSON (a number with too many digits)"
            continue
        except RecursionError:
            yield number, None, "not valid JSON (nested too deeply)"
            continue
        if not isinstance(row, dict):
            yield number, None, f"expected a JSON object, got {type(row).__name__}"
            continue
        yield number, row, None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        location = ".".join(str(p) for p in err["loc"]) or "row"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "is required"
        elif err["type"] in ("string_too_short",) and location in ("id", "title"):
            message = "is empty"
        parts.append(
            f"{location} {message}" if err["type"] == "missing" else f"{location}: {message}"
        )
    return "; ".join(parts)


class CatalogReader:
    """Validated products from a CSV or JSONL file, streamed.

    Iterate `rows()` for ValidRow objects; rejected rows and warnings collect in `rejected`
    and `warnings`. `seen_ids` holds every id met in the file, valid or not, so a sync that
    removes missing products never removes one whose row merely had a typo.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        _check_not_empty(self.path)
        self.format = detect_format(self.path)
        self.rejected: list[RowIssue] = []
        self.warnings: list[RowIssue] = []
        self.seen_ids: set[str] = set()
        self.counter = ByteCounter(self.path, self.warnings)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def rows(self) -> Iterator[ValidRow]:
        if self.format == "jsonl":
            raw_rows = _jsonl_rows(self.counter)
        else:
            delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
            raw_rows = _csv_rows(self.counter, delimiter)
        first_line: dict[str, int] = {}
        for line, row, error in raw_rows:
            if error is not None:
                self.rejected.append(RowIssue(line, error))
                continue
            raw_id = row.get("id")
            row_id = str(raw_id).strip() if raw_id not in (None, "") else None
            try:
                product, warnings = product_from_row(row)
            except ValidationError as exc:
                self.rejected.append(RowIssue(line, _describe(exc), row_id))
                if row_id:
                    self.seen_ids.add(row_id)
                continue
            if product.id in first_line:
                self.rejected.append(
                    RowIssue(
                        line,
                        f"duplicate id (first seen on line {first_line[product.id]}); "
                        "kept the first",
                        product.id,
                    )
                )
                continue
            first_line[product.id] = line
            self.seen_ids.add(product.id)
            self.warnings.extend(RowIssue(line, w, product.id) for w in warnings)
            yield ValidRow(line, product)
