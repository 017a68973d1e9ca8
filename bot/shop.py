"""A running shop: the catalog, the feedback store and the scorer's learning, opened once.

The one door from `bot/` into `retrieval/`: the dialogue, the page and the REST routes call
these methods and hold no retrieval logic of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from bot.settings import Settings
from bot.stores.orders import OrderStore
from retrieval.catalog import Product
from retrieval.events import POSITIVE, EventStore, FeedbackEvent
from retrieval.experiments import ranking_arm
from retrieval.filters import ProductFilters
from retrieval.index import CatalogIndex
from retrieval.ingest import IngestReport
from retrieval.learning import open_weight_store, pairwise_step
from retrieval.policies import PolicyDoc
from retrieval.policy_index import PolicyHit
from retrieval.policy_passages import Passage, best_passages
from retrieval.profile import ShopperProfile, build_profile
from retrieval.ranking import RankedProduct, RankRequest, checked_weights
from retrieval.search import ProductHit

log = logging.getLogger("shopbot.shop")

# With a shared database, how often a worker re-reads what other workers' feedback taught
# the click rates, and how many event rows back it looks each time (a row committed late
# may have a lower number than one already read).
SHARED_LEARNING_S = 10.0
LOOKBACK_ROWS = 1000


class Shop:
    """What a running server holds: settings and the catalog, opened once, on first use."""

    def __init__(self, settings: Settings, catalog: CatalogIndex | None = None) -> None:
        self.settings = settings
        self._catalog = catalog
        self._events: EventStore | None = None
        self._orders: OrderStore | None = None
        self._lock = threading.Lock()
        self._slot_values: dict[str, set[str]] | None = None
        self._slot_values_version: int | None = None
        self.weight_store = open_weight_store(settings.scorer_dir, settings.database_url)
        self._weights_version = 0
        self._events_read = 0  # the newest event row the click rates have learnt from
        self._events_read_at = time.monotonic()

    def refresh_weights(self) -> None:
        """Use the newest trained weights, if `shopbot scorer train` saved a new version;
        with a shared database, learn from other workers' feedback too."""
        version = self.weight_store.latest_version()
        if version != self._weights_version:
            trained = self.weight_store.latest()
            if trained is not None:
                self.catalog.scorer.weights = checked_weights(trained.weights)
                log.info("scorer weights version %s loaded", trained.version)
            self._weights_version = version
        if self.settings.database_url:
            self._learn_from_other_workers()

    def _learn_from_other_workers(self) -> None:
        """Every SHARED_LEARNING_S, re-read the click rates of the products with new events."""
        if time.monotonic() - self._events_read_at < SHARED_LEARNING_S:
            return
        events = self.events
        self._events_read_at = time.monotonic()
        newest = events.newest_row()
        changed = events.products_since(max(0, self._events_read - LOOKBACK_ROWS))
        if changed:
            self.catalog.scorer.posteriors.load(events.product_stats(changed), replace=False)
        self._events_read = newest

    def recommend(
        self,
        query: str,
        k: int,
        filters: ProductFilters,
        *,
        shopper_id: str | None = None,
        session_id: str | None = None,
        request: RankRequest | None = None,
    ) -> list[RankedProduct]:
        """Ranked products for this shopper; with a session, what is shown is logged as
        impressions (with the features it was ranked by, and the ranking experiment's arm)
        for the scorer to learn from."""
        self.refresh_weights()
        profile = self.shopper_profile(shopper_id, session_id)
        arm = ranking_arm(self.settings.ranking_arms, shopper_id or session_id)
        exploration = self.settings.ranking_arms[arm] if arm else None
        ranked = self.catalog.recommend(
            query, k, filters, request, profile, exploration=exploration
        )
        if session_id:
            now = time.time()
            self.events.record_many(
                [
                    FeedbackEvent(
                        "impression",
                        item.product.id,
                        session_id=session_id,
                        shopper_id=shopper_id,
                        ts=now,
                        position=position,
                        features=item.features,
                        request=query[:2000],
                        arm=arm,
                    )
                    for position, item in enumerate(ranked)
                ]
            )
        return ranked

    def open_stores(self) -> None:
        """Load the embedding model and open the feedback store (it loads the learnt click
        rates) now, so the first shopper does not wait for them."""
        self.catalog.embedder.load()
        self.events.count()

    def product_count(self) -> int:
        return self.catalog.count()

    def categories(self) -> list[str]:
        """The catalog's categories, for a filter menu."""
        return self.catalog.records.categories()

    def ingest(self, path: Path, replace: bool = False, progress: bool = False) -> IngestReport:
        """Add or update the products of a CSV or JSONL file (see `CatalogIndex.ingest`);
        `replace` also removes the products the file no longer has."""
        return self.catalog.ingest(path, replace=replace, progress=progress)

    def ingest_policies(self, docs: list[PolicyDoc]) -> dict[str, int]:
        """Make the policy sections exactly `docs`: added, updated, unchanged, removed."""
        return self.catalog.policies.ingest(docs)

    def remove(self, ids: list[str]) -> int:
        """Remove products by id; how many there were."""
        return self.catalog.remove(ids)

    def search(
        self, query: str, k: int, filters: ProductFilters, system: str = "hybrid"
    ) -> list[ProductHit]:
        """Products for a query under filters, by one retrieval system (no ranking for a
        shopper, nothing logged): what `shopbot search` prints."""
        return self.catalog.search(query, k=k, filters=filters, system=system)

    def new_products(self, since: float) -> list[str]:
        """The ids of the products added to the catalog since `since`."""
        return self.catalog.records.added_since(since)

    def product(self, product_id: str) -> Product | None:
        return self.products([product_id]).get(product_id)

    def products(self, ids: list[str]) -> dict[str, Product]:
        """The records of these products that the catalog holds, by id."""
        return self.catalog.records.get_many(ids)

    def nearest_match(self, text: str) -> float:
        """How close `text` is to its nearest product (cosine of the dense recall)."""
        hits = self.catalog.search(text, k=1, system="dense")
        return (hits[0].dense_score or 0.0) if hits else 0.0

    def policy_hits(self, text: str, k: int) -> list[PolicyHit]:
        """The `k` policy sections closest to a question, with their scores."""
        return self.catalog.policies.search(text, k)

    def policy_sections(self, text: str, k: int) -> list[PolicyDoc]:
        """The `k` policy sections closest to a question."""
        return [hit.doc for hit in self.policy_hits(text, k)]

    def policy_passages(self, question: str, docs: list[PolicyDoc]) -> list[Passage]:
        """The sentences and list items of `docs`, best answer to `question` first."""
        return best_passages(self.catalog.embedder, question, docs)

    def slot_values(self) -> dict[str, set[str]]:
        """The catalog's brands, categories, colours, ... (what slots can be checked against),
        read again only after the catalog changed (here or through another worker): the same
        object until then."""
        records = self.catalog.records
        version = records.version()
        with self._lock:
            if self._slot_values is None or version != self._slot_values_version:
                self._slot_values, self._slot_values_version = records.slot_values(), version
            return self._slot_values

    @property
    def events(self) -> EventStore:
        """Feedback events; opening them loads what they taught the scorer."""
        catalog = self.catalog
        with self._lock:
            if self._events is None:
                self._events = EventStore(
                    self.settings.events_path,
                    known_products=lambda ids: set(catalog.records.hashes(list(ids))),
                )
                self._events_read = self._events.newest_row()
                catalog.scorer.posteriors.load(self._events.product_stats())
            return self._events

    def record_feedback(self, event: FeedbackEvent) -> bool:
        """Store one event (committed before this returns) and let the scorer learn from it."""
        stored = self.events.record(event)
        if stored:
            stats = self.events.product_stats([event.product_id])
            self.catalog.scorer.posteriors.load(stats, replace=False)
            self._learn_online(event)
        return stored

    def _learn_online(self, event: FeedbackEvent) -> None:
        """A choice among the products shown together teaches the weights right away."""
        if event.type not in POSITIVE and event.type != "dislike":
            return
        shown = dict(self.events.last_shown(event.session_id))
        if event.product_id not in shown or len(shown) < 2:
            return
        target = shown.pop(event.product_id)
        scorer = self.catalog.scorer
        if event.type == "dislike":  # every other product shown was preferred to it
            for features in shown.values():
                scorer.weights = pairwise_step(scorer.weights, features, [target])
        else:
            scorer.weights = pairwise_step(scorer.weights, target, list(shown.values()))

    def shopper_profile(self, shopper_id: str | None, session_id: str | None) -> ShopperProfile:
        """What this shopper did in every session (with a shopper id) and in this session."""
        interactions = set()
        if shopper_id:
            interactions.update(self.events.interactions(shopper_id=shopper_id))
        if session_id:
            interactions.update(self.events.interactions(session_id=session_id))
        if not interactions:
            return ShopperProfile()
        products = self.catalog.records.get_many(list({pid for pid, _, _ in interactions}))
        return build_profile(interactions, products)

    @property
    def orders(self) -> OrderStore:
        """The order store (data_dir/orders.sqlite), opened on first use."""
        with self._lock:
            if self._orders is None:
                self._orders = OrderStore(self.settings.orders_path)
            return self._orders

    def ensure_demo_orders(self) -> int:
        """Generate the demo orders when there are none, from the demo catalog's products that
        the catalog holds (a store with its own catalog gets none); returns how many."""
        if self.orders.count() > 0:
            return 0
        from retrieval.demo.catalog import generate_catalog

        demo_ids = [product.id for product in generate_catalog(self.settings.demo_products)]
        products = list(self.catalog.records.get_many(demo_ids).values())
        added = self.orders.ensure_demo_orders(products)
        if added:
            log.info("demo order store ready: %s orders", added)
        return added

    @property
    def catalog(self) -> CatalogIndex:
        with self._lock:
            if self._catalog is None:
                self._catalog = CatalogIndex.open(self.settings)
            return self._catalog

    def ensure_demo_catalog(self) -> None:
        """Ingest the demo catalog when the store is empty (or its first ingest was cut off),
        the policy documents when there are none yet, and the demo orders when there are
        none."""
        catalog = self.catalog
        if catalog.policies.count() == 0:
            from retrieval.policies import load_policy_docs

            counts = catalog.policies.ingest(load_policy_docs(self.settings.policies_dir))
            log.info("policy sections ingested: %s", counts)
        if catalog.count() > 0 and not catalog.ingest_interrupted:
            self.ensure_demo_orders()
            return
        from retrieval.demo.catalog import generate_catalog, write_catalog_jsonl

        path = self.settings.demo_catalog_path
        write_catalog_jsonl(generate_catalog(self.settings.demo_products), path)
        log.info(
            "empty store: ingesting the demo catalog (%s products)", self.settings.demo_products
        )
        report = catalog.ingest(path, progress=True)
        log.info("demo catalog ready: %s products in %.1fs", report.accepted, report.seconds)
        self.ensure_demo_orders()

    def close(self) -> None:
        self.weight_store.close()
        if self._orders is not None:
            self._orders.close()
        if self._events is not None:
            self._events.close()
        if self._catalog is not None:
            self._catalog.close()
