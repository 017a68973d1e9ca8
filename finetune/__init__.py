"""Dataset building, LoRA fine-tuning and adapter evaluation."""

# The adapter this repository ships, trained by `shopbot finetune` on the demo store.
from bot.settings import DEFAULT_ADAPTER

__all__ = ["DEFAULT_ADAPTER"]
