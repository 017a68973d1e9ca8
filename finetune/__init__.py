"""Dataset building, LoRA fine-tuning and adapter evaluation."""

from pathlib import Path

# The adapter this repository ships, trained by `shopbot finetune` on the demo store.
DEFAULT_ADAPTER = Path(__file__).resolve().parent / "adapters" / "default"
