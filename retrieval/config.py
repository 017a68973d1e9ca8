"""What the retrieval layer needs to know from the app's settings, as a protocol.

`bot.settings.Settings` satisfies it; `retrieval/` never imports `bot/`, so a script or a
test may pass any object with these attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class CatalogSettings(Protocol):
    data_dir: Path
    chroma_url: str | None
    database_url: str | None  # postgresql://...: the catalog records there
    collection: str
    policy_collection: str
    embedding_model: str
    embedding_batch_size: int
    ingest_batch_size: int
    candidate_pool: int
    rrf_k: int
    dense_weight: float
    keyword_weight: float
    exploration: float

    @property
    def resolved_device(self) -> str: ...

    def model_copy(self, *, update: dict[str, Any]) -> CatalogSettings: ...
