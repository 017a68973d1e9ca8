"""The product records and their keyword index: one SQLite file, or tables of a PostgreSQL
database that every server worker shares.

The records are the source of truth for what the catalog holds: each product's JSON, its
content hash (so an unchanged row is skipped on re-ingest), the columns the filters use, a
full-text index of its words, and the vocabulary spelling correction draws on. Writes for one
batch commit together, so an interrupted ingest leaves whole batches behind and a rerun
completes the rest.

SQLite ranks keyword matches with FTS5's BM25. PostgreSQL keeps a weighted tsvector per
product (title 'A', body 'B', english stemming) under a GIN index and ranks a match by the
sum over the shopper's words of the word's rarity in the catalog (BM25's IDF) times its
`ts_rank`, so a rare word like "waterproof" counts more than "shoe", as in BM25.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from retrieval.catalog import Product
from retrieval.database import POSTGRESQL, open_database
from retrieval.filters import ProductFilters, packed_values
from retrieval.keyword import SpellingIndex, fts_match_expression, query_words

PRODUCTS_TABLE = """
CREATE TABLE IF NOT EXISTS {products} (
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
CREATE TABLE IF NOT EXISTS {vocabulary} (word TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""
SQLITE_SEARCH = """
CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(
    title, body, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""
# `version` counts the catalog's writes, so every worker notices another one's (spelling).
POSTGRES_SEARCH = """
CREATE TABLE {search} (
    rid BIGINT PRIMARY KEY REFERENCES {products} (rid),
    words TSVECTOR NOT NULL
);
CREATE INDEX {search}_words ON {search} USING GIN (words);
CREATE TABLE {meta} (version BIGINT NOT NULL);
INSERT INTO {meta} (version) VALUES (0);
"""
_POSTGRES_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")

# Column weights: a word in the title (with brand and category) counts more than in the body.
TITLE_WEIGHT = 4.0
BODY_WEIGHT = 1.0
# BM25 saturates a word's weighted count (k1 = 1.2 in FTS5), so there a title word scores
# about 1.7 times a body word, not 4; PostgreSQL's ts_rank weighs its labels D, C, B (the
# body) and A (the title) in that same ratio.
BM25_K1 = 1.2


def _saturated(weight: float) -> float:
    return weight * (BM25_K1 + 1) / (weight + BM25_K1)


POSTGRES_LABEL_WEIGHTS = [0.0, 0.0, _saturated(BODY_WEIGHT) / _saturated(TITLE_WEIGHT), 1.0]
# BM25's shape in PostgreSQL: each of the shopper's words (n) is a tsquery; `matches` are the
# products it matches with its ts_rank in each (a few repeats count, length normalised: 1);
# its `rarity` is BM25's IDF over the whole catalog (how many products it matches, before the
# filters); a product scores the sum of rarity x rank over the words it matches.
POSTGRES_KEYWORD_SEARCH = """
WITH terms AS (
    SELECT t.n, plainto_tsquery('english', t.word) AS query
    FROM unnest(?::text[]) WITH ORDINALITY AS t (word, n)
), matches AS (
    SELECT terms.n, s.rid, ts_rank(?::float4[], s.words, terms.query, 1) AS rank
    FROM terms JOIN {search} s ON s.words @@ terms.query
), rarity AS (
    SELECT n, ln(1 + (?::float8 - count(*) + 0.5) / (count(*) + 0.5)) AS weight
    FROM matches GROUP BY n
)
SELECT p.id, sum(rarity.weight * matches.rank) AS score
FROM matches JOIN rarity USING (n) JOIN {products} p ON p.rid = matches.rid
WHERE {condition}
GROUP BY p.rid, p.id ORDER BY score DESC, p.rid LIMIT ?
"""


def _title_text(product: Product) -> str:
    return " ".join(p for p in (product.title, product.brand, product.category) if p)


def _body_text(product: Product) -> str:
    attrs = " ".join(product.attributes.values())
    return f"{product.description} {attrs}".strip()


def _vocabulary_words(product: Product) -> set[str]:
    return set(query_words(f"{_title_text(product)} {_body_text(product)}"))


def _without_accents(text: str) -> str:
    """`text` without its accents ("Café" -> "Cafe"), as FTS5's remove_diacritics reads it."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def catalog_table(collection: str) -> str:
    """The name of a collection's products table in PostgreSQL ("catalog_products"); the
    others are named after it. Refuses a collection that is not a plain SQL name."""
    if not _POSTGRES_NAME.fullmatch(collection):
        raise ValueError(
            "collection must be a lower-case SQL name of letters, digits and _ (at most 40)"
            f" for the PostgreSQL catalog tables, but got {collection!r}"
        )
    return f"catalog_{collection}"


class ProductRecords:
    """Product rows plus keyword search, safe to share between threads: a SQLite file at
    `target`, or at a `postgresql://` URL the tables of `collection` (catalog_<collection>,
    and its _search, _vocabulary and _meta tables), which several workers share."""

    def __init__(self, target: Path | str, *, collection: str = "products") -> None:
        self._db = open_database(target)
        self._postgres = self._db.dialect == POSTGRESQL
        if self._postgres:
            self._products = catalog_table(collection)
            self._search = f"{self._products}_search"
            self._vocabulary = f"{self._products}_vocabulary"
            self._meta = f"{self._products}_meta"
            search = POSTGRES_SEARCH.format(
                products=self._products, search=self._search, meta=self._meta
            )
        else:
            self._products = "products"
            self._search = "products_fts"
            self._vocabulary = "vocabulary"
            search = SQLITE_SEARCH
        tables = PRODUCTS_TABLE.format(products=self._products, vocabulary=self._vocabulary)
        self._db.migrate(self._products, [tables + search])
        self._spelling: SpellingIndex | None = None
        self._spelling_version: int | None = None
        self._product_count = 0
        self._writes = 0

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._db.lock:
            return self._db.execute(sql, params).fetchall()

    def _field(self, *path: str) -> str:
        """SQL for a field of the product's JSON, e.g. ("attributes", "colour")."""
        if self._postgres:
            return f"(data::jsonb #>> '{{{','.join(path)}}}')"
        return f"json_extract(data, '$.{'.'.join(path)}')"

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return self._rows(f"SELECT count(*) FROM {self._products}")[0][0]

    def ids(self) -> list[str]:
        return [row[0] for row in self._rows(f"SELECT id FROM {self._products} ORDER BY rid")]

    def categories(self) -> list[str]:
        """Distinct category names, as the catalog spells them."""
        rows = self._rows(
            f"SELECT min({self._field('category')}) FROM {self._products}"
            " WHERE category_key IS NOT NULL GROUP BY category_key ORDER BY category_key"
        )
        return [row[0] for row in rows]

    def slot_values(self) -> dict[str, set[str]]:
        """The catalog's distinct category, brand, colour, material and product type values,
        and the sizes and features its products list ("s, m, l" counts as three),
        lower-cased: what a parsed slot or a shopper's words may name."""
        fields = {
            "category": ("category",),
            "brand": ("brand",),
            "colour": ("attributes", "colour"),
            "material": ("attributes", "material"),
            "size": ("attributes", "size"),
            "feature": ("attributes", "features"),
            "type": ("attributes", "type"),
        }
        values: dict[str, set[str]] = {}
        for slot, path in fields.items():
            sql = f"SELECT DISTINCT lower({self._field(*path)}) FROM {self._products}"
            found = {row[0] for row in self._rows(sql) if row[0]}
            if slot in ("size", "feature"):
                found = {v.strip() for listed in found for v in str(listed).split(",")} - {""}
            values[slot] = found
        return values

    def _column_by_id(self, column: str, ids: Sequence[str]) -> dict[str, object]:
        """id -> `column` for the ids in the catalog, queried in chunks SQLite accepts."""
        found: dict[str, object] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(
                self._rows(
                    f"SELECT id, {column} FROM {self._products} WHERE id IN ({marks})", chunk
                )
            )
        return found

    def added_since(self, since: float) -> list[str]:
        """The ids of the products that entered the catalog at `since` or later."""
        rows = self._rows(
            f"SELECT id FROM {self._products} WHERE created_at >= ? ORDER BY created_at, rid",
            (since,),
        )
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
        with self._db:
            self._note_write()
            for product, digest in zip(products, hashes, strict=True):
                old = self._db.execute(
                    f"SELECT rid, data FROM {self._products} WHERE id = ?", (product.id,)
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
                        f"INSERT INTO {self._products} (hash, data, category_key, brand_key,"
                        " price, rating, in_stock, colours, sizes, updated_at, id, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING rid",
                        (*columns, product.id, now),
                    ).fetchone()[0]
                else:
                    rid = old[0]
                    self._db.execute(
                        f"UPDATE {self._products} SET hash = ?, data = ?, category_key = ?,"
                        " brand_key = ?, price = ?, rating = ?, in_stock = ?, colours = ?,"
                        " sizes = ?, updated_at = ? WHERE rid = ?",
                        (*columns, rid),
                    )
                    self._unindex(rid)
                    old_words = _vocabulary_words(Product.model_validate_json(old[1]))
                    self._count_words(old_words - words, -1)
                    words = words - old_words
                self._index(rid, product)
                self._count_words(words, +1)

    def delete(self, ids: Sequence[str]) -> int:
        """Remove products by id; returns how many existed."""
        removed = 0
        with self._db:
            self._note_write()
            for pid in ids:
                row = self._db.execute(
                    f"SELECT rid, data FROM {self._products} WHERE id = ?", (pid,)
                ).fetchone()
                if row is None:
                    continue
                self._unindex(row[0])
                self._db.execute(f"DELETE FROM {self._products} WHERE rid = ?", (row[0],))
                self._count_words(_vocabulary_words(Product.model_validate_json(row[1])), -1)
                removed += 1
            self._db.execute(f"DELETE FROM {self._vocabulary} WHERE count <= 0")
        return removed

    def _note_write(self) -> None:
        """Count a write, so `spelling` here and in every other worker rebuilds. In
        PostgreSQL it also queues the workers' writes one after the other (a row lock held
        to commit): two never insert the same new id or count words in crossed order."""
        if self._postgres:
            self._db.execute(f"UPDATE {self._meta} SET version = version + 1")
        self._writes += 1

    def _index(self, rid: int, product: Product) -> None:
        title, body = _title_text(product), _body_text(product)
        if self._postgres:
            self._db.execute(
                f"INSERT INTO {self._search} (rid, words) VALUES (?,"
                " setweight(to_tsvector('english', ?), 'A')"
                " || setweight(to_tsvector('english', ?), 'B'))",
                (rid, _without_accents(title), _without_accents(body)),
            )
        else:
            self._db.execute(
                "INSERT INTO products_fts (rowid, title, body) VALUES (?, ?, ?)", (rid, title, body)
            )

    def _unindex(self, rid: int) -> None:
        key = "rid" if self._postgres else "rowid"
        self._db.execute(f"DELETE FROM {self._search} WHERE {key} = ?", (rid,))

    def _count_words(self, words: Iterable[str], delta: int) -> None:
        self._db.executemany(
            f"INSERT INTO {self._vocabulary} (word, count) VALUES (?, ?) ON CONFLICT (word)"
            f" DO UPDATE SET count = {self._vocabulary}.count + excluded.count",
            [(w, delta) for w in words],
        )

    # -- keyword search ------------------------------------------------------------------

    def version(self) -> int:
        """A number that changes whenever this or any other connection (another worker's)
        changed the catalog."""
        if self._postgres:
            return self._rows(f"SELECT version FROM {self._meta}")[0][0]
        return self._rows("PRAGMA data_version")[0][0] + self._writes

    def spelling(self) -> SpellingIndex:
        """The spelling index over the catalog's words, rebuilt after any write."""
        with self._db.lock:
            version = self.version()
            if self._spelling is None or version != self._spelling_version:
                vocabulary = self._rows(
                    f"SELECT word, count FROM {self._vocabulary} WHERE count > 0"
                )
                self._spelling = SpellingIndex(vocabulary)
                self._product_count = self.count()
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
        """Ids and keyword scores (higher is better) of the best `k` matches under `filters`."""
        terms = list(dict.fromkeys(self.keyword_terms(text)))
        if not terms or k < 1:
            return []
        condition, params = (filters or ProductFilters()).to_sql("p", self._db.dialect)
        if self._postgres:
            sql = POSTGRES_KEYWORD_SEARCH.format(
                search=self._search, products=self._products, condition=condition
            )
            # the catalog's size as of the `spelling` that corrected the terms
            rows = self._rows(sql, [terms, POSTGRES_LABEL_WEIGHTS, self._product_count, *params, k])
        else:
            rows = self._rows(
                f"SELECT p.id, -bm25(products_fts, {TITLE_WEIGHT}, {BODY_WEIGHT}) AS score"
                " FROM products_fts JOIN products p ON p.rid = products_fts.rowid"
                f" WHERE products_fts MATCH ? AND {condition}"
                " ORDER BY bm25(products_fts, ?, ?) LIMIT ?",
                [fts_match_expression(terms), *params, TITLE_WEIGHT, BODY_WEIGHT, k],
            )
        return [(pid, float(score)) for pid, score in rows]

    def filtered_ids(self, filters: ProductFilters, limit: int) -> list[str]:
        """Ids passing `filters`, best rated first; for requests with filters but no words."""
        condition, params = filters.to_sql("p", self._db.dialect)
        rows = self._rows(
            f"SELECT p.id FROM {self._products} p WHERE {condition}"
            " ORDER BY p.rating IS NULL, p.rating DESC, p.rid LIMIT ?",
            [*params, limit],
        )
        return [row[0] for row in rows]
