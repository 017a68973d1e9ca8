"""The product records and their keyword index, in one SQLite file.

SQLite is the source of truth for what the catalog holds: each product's JSON, its content
hash (so an unchanged row is skipped on re-ingest), the columns the filters use, and an FTS5
full-text index ranked by BM25. Writes for one batch commit together, so an interrupted ingest
leaves whole batches behind and a rerun completes the rest.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from retrieval.catalog import Product
from retrieval.filters import ProductFilters, packed_values
from retrieval.keyword import SpellingIndex, fts_match_expression, query_words

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    data TEXT NOT NULL,
    category_key TEXT,
    brand_key TEXT,
    price REAL,
    rating REAL,
    in_stock INTEGER NOT NULL,
    colours TEXT NOT NULL,
    sizes TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(
    title, body, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS vocabulary (word TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""

# BM25 column weights: a word in the title (with brand and category) counts more.
TITLE_WEIGHT = 4.0
BODY_WEIGHT = 1.0


def _title_text(product: Product) -> str:
    return " ".join(p for p in (product.title, product.brand, product.category) if p)


def _body_text(product: Product) -> str:
    attrs = " ".join(product.attributes.values())
    return f"{product.description} {attrs}".strip()


def _vocabulary_words(product: Product) -> set[str]:
    return set(query_words(f"{_title_text(product)} {_body_text(product)}"))


class ProductRecords:
    """Product rows plus BM25 keyword search, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._db.commit()
        self._spelling: SpellingIndex | None = None
        self._spelling_version: int | None = None
        self._writes = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM products").fetchone()[0]

    def ids(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT id FROM products ORDER BY rid")]

    def categories(self) -> list[str]:
        """Distinct category names, as the catalog spells them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT json_extract(data, '$.category') AS c FROM products"
                " WHERE category_key IS NOT NULL GROUP BY category_key ORDER BY category_key"
            )
            return [row[0] for row in rows]

    def slot_values(self) -> dict[str, set[str]]:
        """The catalog's distinct category, brand, colour and material values, and the sizes
        and features its products list ("s, m, l" counts as three), lower-cased: what a
        parsed slot or a shopper's words may name."""
        queries = {
            "category": "SELECT DISTINCT lower(json_extract(data, '$.category')) FROM products",
            "brand": "SELECT DISTINCT lower(json_extract(data, '$.brand')) FROM products",
            "colour": "SELECT DISTINCT lower(json_extract(data, '$.attributes.colour'))"
            " FROM products",
            "material": "SELECT DISTINCT lower(json_extract(data, '$.attributes.material'))"
            " FROM products",
        }
        with self._lock:
            values = {
                slot: {row[0] for row in self._db.execute(sql) if row[0]}
                for slot, sql in queries.items()
            }
            for slot, key in (("size", "size"), ("feature", "features")):
                column = f"lower(json_extract(data, '$.attributes.{key}'))"
                listed = self._db.execute(f"SELECT DISTINCT {column} FROM products")
                values[slot] = {
                    value.strip() for (row,) in listed if row for value in str(row).split(",")
                } - {""}
        return values

    def _column_by_id(self, column: str, ids: Sequence[str]) -> dict[str, object]:
        """id -> `column` for the ids in the catalog, queried in chunks SQLite accepts."""
        found: dict[str, object] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT id, {column} FROM products WHERE id IN ({marks})", chunk
                    )
                )
        return found

    def added_since(self, since: float) -> list[str]:
        """The ids of the products that entered the catalog at `since` or later."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM products WHERE created_at >= ? ORDER BY created_at", (since,)
            ).fetchall()
        return [row[0] for row in rows]

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self._column_by_id("hash", ids)

    def get_many(self, ids: Sequence[str]) -> dict[str, Product]:
        """Products by id; ids that are not in the catalog are left out."""
        rows = self._column_by_id("data", ids)
        return {pid: Product.model_validate_json(data) for pid, data in rows.items()}

    def added_at(self, ids: Sequence[str]) -> dict[str, float]:
        """When each product first entered the catalog (seconds since the epoch)."""
        return self._column_by_id("created_at", ids)

    # -- writing -------------------------------------------------------------------------

    def upsert(self, products: Sequence[Product], hashes: Sequence[str]) -> None:
        """Insert or replace `products` (with their content hashes) in one transaction."""
        now = time.time()
        with self._lock, self._db:
            for product, digest in zip(products, hashes, strict=True):
                old = self._db.execute(
                    "SELECT rid, data FROM products WHERE id = ?", (product.id,)
                ).fetchone()
                columns = (
                    digest,
                    product.model_dump_json(),
                    (product.category or "").lower() or None,
                    (product.brand or "").lower() or None,
                    product.price,
                    product.rating,
                    int(product.in_stock),
                    packed_values(product.colours),
                    packed_values(product.sizes),
                    now,
                )
                words = _vocabulary_words(product)
                if old is None:
                    rid = self._db.execute(
                        "INSERT INTO products (hash, data, category_key, brand_key, price, rating,"
                        " in_stock, colours, sizes, updated_at, id, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*columns, product.id, now),
                    ).lastrowid
                else:
                    rid = old[0]
                    self._db.execute(
                        "UPDATE products SET hash = ?, data = ?, category_key = ?, brand_key = ?,"
                        " price = ?, rating = ?, in_stock = ?, colours = ?, sizes = ?,"
                        " updated_at = ? WHERE rid = ?",
                        (*columns, rid),
                    )
                    self._db.execute("DELETE FROM products_fts WHERE rowid = ?", (rid,))
                    old_words = _vocabulary_words(Product.model_validate_json(old[1]))
                    self._count_words(old_words - words, -1)
                    words = words - old_words
                self._db.execute(
                    "INSERT INTO products_fts (rowid, title, body) VALUES (?, ?, ?)",
                    (rid, _title_text(product), _body_text(product)),
                )
                self._count_words(words, +1)
            self._writes += 1

    def delete(self, ids: Sequence[str]) -> int:
        """Remove products by id; returns how many existed."""
        removed = 0
        with self._lock, self._db:
            for pid in ids:
                row = self._db.execute(
                    "SELECT rid, data FROM products WHERE id = ?", (pid,)
                ).fetchone()
                if row is None:
                    continue
                self._db.execute("DELETE FROM products_fts WHERE rowid = ?", (row[0],))
                self._db.execute("DELETE FROM products WHERE rid = ?", (row[0],))
                self._count_words(_vocabulary_words(Product.model_validate_json(row[1])), -1)
                removed += 1
            self._db.execute("DELETE FROM vocabulary WHERE count <= 0")
            self._writes += 1
        return removed

    def _count_words(self, words: Iterable[str], delta: int) -> None:
        self._db.executemany(
            "INSERT INTO vocabulary (word, count) VALUES (?, ?)"
            " ON CONFLICT(word) DO UPDATE SET count = count + excluded.count",
            [(w, delta) for w in words],
        )

    # -- keyword search ------------------------------------------------------------------

    def spelling(self) -> SpellingIndex:
        """The spelling index over the catalog's words, rebuilt after any write."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0] + self._writes
            if self._spelling is None or version != self._spelling_version:
                rows = self._db.execute("SELECT word, count FROM vocabulary WHERE count > 0")
                self._spelling = SpellingIndex(rows.fetchall())
                self._spelling_version = version
            return self._spelling

    def keyword_terms(self, text: str) -> list[str]:
        """The query's content words with misspellings corrected against the catalog."""
        spelling = self.spelling()
        terms = []
        for word in query_words(text):
            fixed = spelling.correct(word)
            terms.append(fixed or word)
        return terms

    def keyword_search(
        self, text: str, filters: ProductFilters | None = None, k: int = 100
    ) -> list[tuple[str, float]]:
        """Ids and BM25 scores (higher is better) of the best `k` matches under `filters`."""
        terms = self.keyword_terms(text)
        if not terms or k < 1:
            return []
        condition, params = (filters or ProductFilters()).to_sql("p")
        sql = (
            f"SELECT p.id, -bm25(products_fts, {TITLE_WEIGHT}, {BODY_WEIGHT}) AS score"
            " FROM products_fts JOIN products p ON p.rid = products_fts.rowid"
            f" WHERE products_fts MATCH ? AND {condition}"
            " ORDER BY bm25(products_fts, ?, ?) LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(
                sql, [fts_match_expression(terms), *params, TITLE_WEIGHT, BODY_WEIGHT, k]
            ).fetchall()
        return [(pid, float(score)) for pid, score in rows]

    def filtered_ids(self, filters: ProductFilters, limit: int) -> list[str]:
        """Ids passing `filters`, best rated first; for requests with filters but no words."""
        condition, params = filters.to_sql("p")
        with self._lock:
            rows = self._db.execute(
                f"SELECT p.id FROM products p WHERE {condition}"
                " ORDER BY p.rating IS NULL, p.rating DESC, p.rid LIMIT ?",
                [*params, limit],
            )
            return [row[0] for row in rows]
