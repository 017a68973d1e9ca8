"""The language model: loading (GGUF, LoRA adapter, cache), int8 steps, decoding, the chat
model that writes replies."""
