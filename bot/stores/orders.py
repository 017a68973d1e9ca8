"""The demo store's orders in SQLite (WAL) or PostgreSQL (`database_url`): look one up,
cancel it, change where it ships, ask for a refund.

Every operation is one conditional UPDATE, so two requests racing on the same order cannot
both win (a cancel and a shipment, say). Operations return an `OrderResult` whose `outcome`
says what happened in words the dialogue maps onto a reply template:

    >>> store = OrderStore(Path(tmp) / "orders.sqlite")            # doctest: +SKIP
    >>> store.add([order])                                          # doctest: +SKIP
    >>> store.cancel(order.id).outcome                              # doctest: +SKIP
    'cancelled'                 # or 'already_shipped', 'already_cancelled'

`find(order_id, email)` is the only lookup the chat uses: it returns the order only when the
e-mail is the one on the order, and None alike for an unknown id and a wrong e-mail, so a
caller cannot tell which. Demo orders are generated from the demo catalog (seeded: the same
products give the same orders) with 8-digit order numbers, the form the intent parser was
trained to read ("where is my order 12345678?").
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import ShopbotError
from retrieval.database import open_database

STATUSES = ("processing", "shipped", "delivered", "cancelled")
REFUND_STATUSES = ("none", "requested", "refunded")
DEMO_ORDERS = 200
MAX_ADDRESS_CHARS = 200
DAY = 86_400.0

# An order number as shoppers type it: "12345678", "#12345678", "SB-482913".
ORDER_NUMBER = re.compile(r"(?<![\w.@])#?([A-Za-z]{0,3}-?\d{5,20})(?![\w@])")
_EMAIL_LIKE = re.compile(r"\S+@\S+")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    items TEXT NOT NULL,
    total REAL NOT NULL,
    currency TEXT NOT NULL,
    shipping_address TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    tracking_number TEXT,
    carrier TEXT,
    refund_status TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX IF NOT EXISTS orders_by_email ON orders (email);
"""
COLUMNS = (
    "id",
    "email",
    "status",
    "items",
    "total",
    "currency",
    "shipping_address",
    "created_at",
    "updated_at",
    "tracking_number",
    "carrier",
    "refund_status",
)


class OrderError(ShopbotError):
    """An order operation was given something invalid (an empty address, an unknown id)."""


@dataclass
class OrderItem:
    product_id: str
    title: str
    price: float
    quantity: int = 1


@dataclass
class Order:
    id: str
    email: str
    status: str
    items: list[OrderItem]
    total: float
    shipping_address: str
    created_at: float
    updated_at: float
    currency: str = "USD"
    tracking_number: str | None = None
    carrier: str | None = None
    refund_status: str = "none"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise OrderError(f"status must be one of {STATUSES}, but got {self.status!r}")
        if self.refund_status not in REFUND_STATUSES:
            raise OrderError(
                f"refund_status must be one of {REFUND_STATUSES}, but got {self.refund_status!r}"
            )
        self.email = self.email.strip().lower()

    def summary(self) -> dict[str, Any]:
        """What the shopper may see of their order (JSON-ready; times as ISO dates)."""
        data = asdict(self)
        data.pop("email")
        data["created_at"] = iso_date(self.created_at)
        data["updated_at"] = iso_date(self.updated_at)
        return data


@dataclass
class OrderResult:
    """What an operation did: `ok` when the order changed, `outcome` names what happened."""

    ok: bool
    outcome: str
    order: Order
    details: dict[str, Any] = field(default_factory=dict)


def iso_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def find_order_number(text: str) -> str | None:
    """The first order number a message states, e-mail addresses aside.

    >>> find_order_number("it's #12345678, mail me at a1234567@b.com")
    '12345678'
    """
    match = ORDER_NUMBER.search(_EMAIL_LIKE.sub(" ", text))
    return match.group(1) if match else None


class OrderStore:
    """Orders in one SQLite file or PostgreSQL database; safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self._db = open_database(path)
        self._db.migrate("orders", [SCHEMA])
        self._lock = self._db.lock

    def close(self) -> None:
        self._db.close()

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM orders").fetchone()[0]

    def add(self, orders: Iterable[Order]) -> int:
        """Insert or replace orders; returns how many were written."""
        rows = [_row(order) for order in orders]
        with self._db:
            self._db.executemany(
                f"INSERT INTO orders ({', '.join(COLUMNS)})"
                f" VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{name} = excluded.{name}" for name in COLUMNS[1:]),
                rows,
            )
            self._db.commit()
        return len(rows)

    def get(self, order_id: str) -> Order | None:
        """An order by id, whoever asks: for staff tools and tests, not for the chat."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM orders WHERE id = ?", (str(order_id),)
            ).fetchone()
        return _order(row) if row else None

    def find(self, order_id: str, email: str) -> Order | None:
        """The order only when `email` is the one on it; None for an unknown id or a wrong
        e-mail alike, so the answer does not say whether the order exists."""
        order = self.get(order_id.lstrip("#"))
        if order is None or order.email != (email or "").strip().lower():
            return None
        return order

    def orders_of(self, email: str) -> list[Order]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM orders WHERE email = ? ORDER BY created_at",
                ((email or "").strip().lower(),),
            ).fetchall()
        return [_order(row) for row in rows]

    def cancel(self, order_id: str) -> OrderResult:
        """Cancel an order that has not shipped yet (outcomes: cancelled, already_cancelled,
        already_shipped)."""
        changed = self._update(order_id, "status = 'cancelled'", "status = 'processing'", ())
        order = self._existing(order_id)
        if changed:
            return OrderResult(True, "cancelled", order)
        if order.status == "cancelled":
            return OrderResult(False, "already_cancelled", order)
        return OrderResult(False, "already_shipped", order)

    def change_address(self, order_id: str, address: str) -> OrderResult:
        """Ship to another address, only before the order ships (outcomes: address_changed,
        already_shipped, cancelled). Raises OrderError for an empty or over-long address."""
        address = " ".join(str(address or "").split())
        if not address or len(address) > MAX_ADDRESS_CHARS:
            raise OrderError(
                f"a shipping address must be 1 to {MAX_ADDRESS_CHARS} characters, "
                f"but got {len(address)}"
            )
        changed = self._update(
            order_id, "shipping_address = ?", "status = 'processing'", (address,)
        )
        order = self._existing(order_id)
        if changed:
            return OrderResult(True, "address_changed", order)
        outcome = "cancelled" if order.status == "cancelled" else "already_shipped"
        return OrderResult(False, outcome, order)

    def request_refund(self, order_id: str) -> OrderResult:
        """Ask for a refund of a delivered order (outcomes: refund_requested,
        refund_already_requested, refund_done, not_delivered, cancelled)."""
        changed = self._update(
            order_id,
            "refund_status = 'requested'",
            "status = 'delivered' AND refund_status = 'none'",
            (),
        )
        order = self._existing(order_id)
        if changed:
            return OrderResult(True, "refund_requested", order)
        if order.status == "cancelled":
            return OrderResult(False, "cancelled", order)
        if order.status != "delivered":
            return OrderResult(False, "not_delivered", order)
        if order.refund_status == "refunded":
            return OrderResult(False, "refund_done", order)
        return OrderResult(False, "refund_already_requested", order)

    def ensure_demo_orders(self, products: Sequence[Any], n: int = DEMO_ORDERS) -> int:
        """Generate the demo orders when the store is empty; returns how many were added."""
        if self.count() > 0 or not products:
            return 0
        return self.add(generate_demo_orders(products, n))

    def _update(self, order_id: str, assignment: str, condition: str, values: tuple) -> bool:
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE orders SET {assignment}, updated_at = ? WHERE id = ? AND {condition}",
                (*values, time.time(), str(order_id)),
            )
            self._db.commit()
            return cursor.rowcount > 0

    def _existing(self, order_id: str) -> Order:
        order = self.get(order_id)
        if order is None:
            raise OrderError(f"no order {order_id!r}")
        return order


def _row(order: Order) -> tuple:
    items = json.dumps([asdict(item) for item in order.items])
    values = asdict(order)
    values["items"] = items
    return tuple(values[name] for name in COLUMNS)


def _order(row: Sequence[Any]) -> Order:
    values = dict(zip(COLUMNS, row, strict=True))
    values["items"] = [OrderItem(**item) for item in json.loads(values["items"])]
    return Order(**values)


FIRST_NAMES = (
    "alex", "sam", "jordan", "taylor", "morgan", "casey", "riley", "jamie", "avery", "quinn",
    "maria", "li", "omar", "priya", "lucas", "emma", "noah", "olivia", "mateo", "zoe",
)  # fmt: skip
LAST_NAMES = (
    "smith", "garcia", "chen", "patel", "johnson", "brown", "nguyen", "kowalski", "silva",
    "okafor", "muller", "rossi", "kim", "haddad", "jensen", "dubois",
)  # fmt: skip
MAIL_DOMAINS = ("example.com", "example.org", "mail.example.net")
STREETS = ("Oak Street", "Maple Avenue", "Harbor Road", "Elm Lane", "Cedar Court", "Hill Road")
CITIES = (
    ("Springfield", "IL", "62704"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78701"),
    ("Madison", "WI", "53703"),
    ("Burlington", "VT", "05401"),
    ("Boulder", "CO", "80302"),
)
CARRIERS = ("UPS", "FedEx", "USPS")
# Share of demo orders in each status; the age of an order fits its status.
STATUS_MIX = (("processing", 0.25), ("shipped", 0.3), ("delivered", 0.35), ("cancelled", 0.1))
AGE_DAYS = {"processing": (0, 2), "shipped": (2, 6), "delivered": (6, 60), "cancelled": (1, 30)}


def generate_demo_orders(
    products: Sequence[Any], n: int = DEMO_ORDERS, seed: int = 0, now: float | None = None
) -> list[Order]:
    """`n` orders of in-stock `products` (Product records), the same for the same products
    and seed; about a third of the shoppers have more than one order. Times count back from
    `now` (default: the present), so a fresh store looks recent."""
    now = time.time() if now is None else now
    rng = random.Random(seed)
    stock = sorted((p for p in products if p.in_stock and p.price is not None), key=lambda p: p.id)
    if not stock:
        return []
    shoppers = [_demo_shopper(rng, number) for number in range(max(1, n * 2 // 3))]
    used: set[str] = set()
    orders = []
    for _ in range(n):
        order_id = str(rng.randint(10_000_000, 99_999_999))
        while order_id in used:
            order_id = str(rng.randint(10_000_000, 99_999_999))
        used.add(order_id)
        email, address = rng.choice(shoppers)
        status = rng.choices([s for s, _ in STATUS_MIX], [w for _, w in STATUS_MIX])[0]
        low, high = AGE_DAYS[status]
        created = now - rng.uniform(low, high) * DAY
        picked = rng.sample(stock, k=min(len(stock), rng.choice((1, 1, 1, 2, 2, 3))))
        items = [OrderItem(p.id, p.title, float(p.price), rng.choice((1, 1, 1, 2))) for p in picked]
        total = round(sum(item.price * item.quantity for item in items), 2)
        shipped = status in ("shipped", "delivered")
        refund = "none"
        if status == "delivered":
            refund = rng.choices(REFUND_STATUSES, (0.8, 0.1, 0.1))[0]
        orders.append(
            Order(
                id=order_id,
                email=email,
                status=status,
                items=items,
                total=total,
                currency=picked[0].currency or "USD",
                shipping_address=address,
                created_at=round(created, 3),
                updated_at=round(min(now, created + rng.uniform(0.1, 2.0) * DAY), 3),
                tracking_number=f"1Z{rng.randint(10**9, 10**10 - 1)}" if shipped else None,
                carrier=rng.choice(CARRIERS) if shipped else None,
                refund_status=refund,
            )
        )
    return orders


def _demo_shopper(rng: random.Random, number: int) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}{number}@{rng.choice(MAIL_DOMAINS)}"
    city, state, postcode = rng.choice(CITIES)
    address = f"{rng.randint(1, 999)} {rng.choice(STREETS)}, {city}, {state} {postcode}"
    return email, address
