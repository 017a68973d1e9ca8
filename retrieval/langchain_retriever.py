"""The catalog as a LangChain retriever, so chains and agents can recall products.

retriever = ProductRetriever(catalog=catalog, k=5, filters=ProductFilters(price_max=100))
docs = retriever.invoke("waterproof hiking boots")
docs[0].metadata["id"], docs[0].metadata["price"]
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrieval.filters import ProductFilters


class ProductRetriever(BaseRetriever):
    """Hybrid product recall returning one Document per product (text + record metadata)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    catalog: Any
    k: int = 10
    filters: ProductFilters | None = None
    system: str = "hybrid"

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.catalog.search(query, k=self.k, filters=self.filters, system=self.system)
        return [
            Document(
                page_content=hit.product.embedding_text(),
                metadata={**hit.to_dict(), "attributes": dict(hit.product.attributes)},
                id=hit.product.id,
            )
            for hit in hits
        ]
