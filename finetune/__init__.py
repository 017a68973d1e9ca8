"""Dataset building, LoRA fine-tuning and adapter evaluation."""
