"""Export the LM with its LoRA adapter merged, for an inference server to load.

Writes two copies of one model into a folder, and `export.json` saying what is where:

- `merged/`: safetensors (bf16) + tokenizer, what vLLM (or transformers) loads. The GPU
  path: `vllm serve DIR/merged --served-model-name shopbot --port 8000`, then
  `SHOPBOT_LM_URL=http://gpu-host:8000/v1 SHOPBOT_LM_API_MODEL=shopbot
  SHOPBOT_LM_PARSE_ON_SERVER=1 shopbot serve` (the parse's grammar goes in vLLM's
  `structured_outputs`; not tried here: these machines have no GPU and no vLLM);
- `shopbot.<type>.gguf`: one GGUF file for llama.cpp's server, the CPU path:
  `llama-server -m DIR/shopbot.q8_0.gguf -t 2 --port 8080`, then
  `SHOPBOT_LM_URL=http://localhost:8080/v1 SHOPBOT_LM_PARSE_ON_SERVER=1 shopbot serve`.

The GGUF is written with the installed `gguf` package, no llama.cpp tree needed: the base
model's own GGUF (the shipped SmolLM2 file, or `gguf_source`) gives the metadata and the
tokenizer, and its tensors are replaced by the merged weights, in F16 or Q8_0 (gguf-py's
quantizer; norms stay F32). llama.cpp stores a llama model's query and key projections with
the rows of each head interleaved for its rotary embedding; transformers undoes that when it
loads a GGUF, so the merged weights are permuted back here.

Both copies end a generation on every token the in-process LM stops at
(`bot.lm.decoding.stop_token_ids`): a new turn starting (`<|im_start|>`) ends this one too,
which a server would otherwise only do for the end-of-turn marker. The GGUF marks it as
llama.cpp's end-of-message token, the safetensors copy lists it among `eos_token_id`.
Without that, a grammar-constrained parse on the server (where `<|im_start|>` is no text
the grammar allows) would write on where the adapter ends its line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF_TYPES = ("q8_0", "f16")


@dataclass
class ExportedLM:
    """Where the merged model went and what it is."""

    merged_dir: Path
    gguf_path: Path
    gguf_type: str
    adapter: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "merged_dir": str(self.merged_dir),
            "gguf": str(self.gguf_path),
            "gguf_type": self.gguf_type,
            "adapter": self.adapter,
        }


def export_lm(
    out: Path,
    *,
    model: str = "default",
    adapter: Path | None = None,
    data_dir: Path = Path(".shopbot"),
    gguf_type: str = "q8_0",
    gguf_source: Path | None = None,
) -> ExportedLM:
    """Merge `adapter` into `model` and write `out/merged/` and `out/shopbot.<type>.gguf`.

    `gguf_source` is the base model's GGUF (metadata and tokenizer are copied from it); it
    defaults to the shipped SmolLM2 file and is needed for any other base model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bot.lm.decoding import stop_token_ids
    from bot.lm.loading import (
        DEFAULT_LM,
        LanguageModelError,
        default_gguf_path,
        merge_adapter,
        resolve_model,
    )

    if gguf_type not in GGUF_TYPES:
        raise LanguageModelError(f"gguf_type must be one of {GGUF_TYPES}, but got {gguf_type!r}")
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise LanguageModelError(f"no LoRA adapter at {adapter} (adapter_config.json missing)")
    if gguf_source is None:
        if model != DEFAULT_LM:
            raise LanguageModelError(
                f"the GGUF of {model!r} is needed to copy its metadata: pass its GGUF file"
            )
        gguf_source = default_gguf_path()
    source = resolve_model(model, data_dir)
    tokenizer = AutoTokenizer.from_pretrained(source)
    lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    if adapter is not None:
        lm = merge_adapter(lm, Path(adapter))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged_dir = out / "merged"
    gguf_path = out / f"shopbot.{gguf_type}.gguf"
    turn_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    ends = stop_token_ids(tokenizer)
    write_gguf(
        lm.state_dict(),
        lm.config,
        Path(gguf_source),
        gguf_path,
        gguf_type,
        end_of_message=turn_start if turn_start in ends else None,
    )
    lm.generation_config.eos_token_id = sorted(ends)
    lm.to(torch.bfloat16).save_pretrained(merged_dir)  # what the model runs in on a GPU
    tokenizer.save_pretrained(merged_dir)
    exported = ExportedLM(merged_dir, gguf_path, gguf_type, str(adapter) if adapter else None)
    (out / "export.json").write_text(json.dumps(exported.to_dict(), indent=2) + "\n")
    return exported


def write_gguf(
    state: dict[str, Any],
    config: Any,
    source: Path,
    path: Path,
    gguf_type: str,
    end_of_message: int | None = None,
) -> None:
    """One GGUF file: `source`'s metadata and tokenizer, `state`'s weights (HF names),
    and `end_of_message` (a token id) as one more token that ends a generation."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    model_arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch)
    names = gguf.get_tensor_name_map(model_arch, config.num_hidden_layers)
    weights = {}
    for hf_name, tensor in state.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is not None:
            weights[name] = llama_order(hf_name, tensor.float().numpy(), config)
    wanted = [t.name for t in reader.tensors]
    missing = sorted(set(wanted) - set(weights))
    if missing:
        raise ValueError(f"the merged model has no weights for {missing[:3]} of {source.name}")
    writer = gguf.GGUFWriter(path, arch)
    file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)
    writer.add_file_type(file_type[gguf_type])
    if end_of_message is not None and "tokenizer.ggml.eom_token_id" not in reader.fields:
        writer.add_eom_token_id(end_of_message)
    for name in wanted:
        data = weights[name].astype(np.float32)
        if data.ndim == 1:
            writer.add_tensor(name, data)
        elif gguf_type == "f16":
            writer.add_tensor(name, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama_order(hf_name: str, weight: Any, config: Any) -> Any:
    """A weight in llama.cpp's layout: query and key rows of each head interleaved (the
    inverse of what transformers does on loading a llama GGUF), everything else as is."""
    if config.model_type != "llama":
        return weight
    if hf_name.endswith("q_proj.weight"):
        heads = config.num_attention_heads
    elif hf_name.endswith("k_proj.weight"):
        heads = config.num_key_value_heads
    else:
        return weight
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )
