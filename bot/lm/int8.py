"""Int8 weights for one-token decoding steps on CPU, bf16 for everything else.

Decoding a reply token by token reads every weight once per token, so its speed is the
speed of reading the weights. An int8 copy of each linear layer's weights (one scale per
output row; activations stay bf16, so nothing like dynamic quantisation's loss of
accuracy) halves what a one-token step reads: torch's `_weight_int8pack_mm` does such a
step's matrix products in about half the time of bf16 on this project's CPU. For several
tokens at once (a prompt, a checked draft) that kernel is slower than bf16's, so those
passes keep the bf16 weights: `HybridLinear` picks by the number of rows.

    quantize_for_decoding(model)   # in place; the model must already be bf16 on CPU
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

INT8_MAX_ROWS = 4  # up to this many token rows the int8 kernel beats bf16 (measured)


class HybridLinear(nn.Module):
    """A bias-free linear layer with bf16 weights and an int8 copy for few-row inputs."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        self.weight = linear.weight  # shared with the model (tied embeddings stay tied)
        scale = weight.float().abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.register_buffer(
            "weight_int8",
            torch.round(weight.float() / scale[:, None]).clamp(-127, 127).to(torch.int8),
        )
        self.register_buffer("scale", scale.to(weight.dtype))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] > INT8_MAX_ROWS or x.dtype != torch.bfloat16:
            return nn.functional.linear(x, self.weight)
        out = torch._weight_int8pack_mm(rows.contiguous(), self.weight_int8, self.scale)
        return out.reshape(*x.shape[:-1], self.out_features)


def int8_decoding_available() -> bool:
    return hasattr(torch, "_weight_int8pack_mm")


def quantize_for_decoding(model: Any) -> int:
    """Replace the model's bias-free linear layers (attention, MLP, output head) with
    HybridLinear, in place; returns how many were replaced."""
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Linear) and child.bias is None
    ]
    for parent, name, child in targets:
        setattr(parent, name, HybridLinear(child))
    return len(targets)
