"""The default embedding model, offline, with its fast query path."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embeddings import Embedder, EmbeddingCache

pytestmark = pytest.mark.integration


def test_default_model_loads_offline_and_query_path_matches_documents(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = Embedder(cache=EmbeddingCache(tmp_path / "cache.sqlite"), onnx_dir=tmp_path / "onnx")
    texts = ["waterproof hiking boots", "gift for a coffee lover"]

    documents = embedder.embed_documents(texts)
    queries = np.stack([embedder.embed_query(t) for t in texts])

    assert documents.shape == (2, 384)
    assert np.allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    assert (documents * queries).sum(axis=1).min() > 0.9999
    assert list((tmp_path / "onnx").glob("*.onnx")), "the ONNX copy is cached for next start"
    assert float(documents[0] @ documents[1]) < 0.5  # unrelated needs stay apart


def test_unknown_model_is_a_clear_error(tmp_path):
    from retrieval.errors import EmbeddingModelError

    with pytest.raises(EmbeddingModelError, match="cannot load embedding model"):
        Embedder(str(tmp_path / "no-such-model")).load()
