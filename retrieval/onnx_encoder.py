"""A fast path for embedding one short query: the same transformer, run by ONNX Runtime.

On a CPU, PyTorch spends most of a short query's time on per-operator overhead, which ONNX
Runtime does not have (the README has the figures). The ONNX file is exported once from the loaded
sentence-transformers model and cached on disk. The fast path is used only when it reproduces
the PyTorch vectors (cosine > 0.9999 on probe sentences), so a model with another pooling or
inputs simply keeps using PyTorch.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROBES = (
    "red running shoes under 100",
    "something to keep me dry on my bike commute",
    "Brewster espresso machine, stainless steel, 15 bar pump",
)
MIN_AGREEMENT = 0.9999


class OnnxQueryEncoder:
    def __init__(self, session: Any, tokenizer: Any, input_names: list[str]) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._input_names = input_names

    def encode(self, text: str) -> np.ndarray:
        """The L2-normalised, mean-pooled vector of `text`."""
        batch = self._tokenizer([text], return_tensors="np", truncation=True, max_length=256)
        feeds = {name: batch[name].astype(np.int64) for name in self._input_names}
        hidden = self._session.run(None, feeds)[0]
        mask = batch["attention_mask"][..., None].astype(np.float32)
        vector = (hidden * mask).sum(axis=1)[0] / max(float(mask.sum()), 1.0)
        return (vector / (np.linalg.norm(vector) or 1.0)).astype(np.float32)

    @classmethod
    def build(cls, model: Any, model_id: str, cache_dir: Path) -> OnnxQueryEncoder | None:
        """Export (or reuse) the ONNX copy of a loaded SentenceTransformer; None if unsuitable."""
        try:
            import onnxruntime
        except ImportError:
            return None
        try:
            tokenizer = model.tokenizer
            input_names = [
                name
                for name in ("input_ids", "attention_mask", "token_type_ids")
                if name in tokenizer(["probe"], return_tensors="np")
            ]
            path = cache_dir / f"{hashlib.sha1(model_id.encode()).hexdigest()[:16]}.onnx"
            if not path.exists():
                _export(model, input_names, path)
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            encoder = cls(session, tokenizer, input_names)
            reference = model.encode(list(PROBES), normalize_embeddings=True)
            agreement = min(
                float(encoder.encode(p) @ r) for p, r in zip(PROBES, reference, strict=True)
            )
        except Exception as exc:  # noqa: BLE001 - any failure means: stay on PyTorch
            log.info("ONNX query path unavailable for %s: %s", model_id, exc)
            return None
        if agreement < MIN_AGREEMENT:
            log.info("ONNX query path disagrees with PyTorch for %s (%.5f)", model_id, agreement)
            return None
        return encoder


def _export(model: Any, input_names: list[str], path: Path) -> None:
    import torch

    transformer = model[0].model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            kwargs = dict(zip(input_names, inputs, strict=True))
            return self.transformer(**kwargs).last_hidden_state

    sample = model.tokenizer(["a sample query"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*input_names, "hidden"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(),
            tuple(sample[name] for name in input_names),
            str(partial),
            input_names=input_names,
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    partial.replace(path)
