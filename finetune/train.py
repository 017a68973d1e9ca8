"""LoRA fine-tuning on prompt/completion JSONL, with accelerate: CPU for small runs, the GPU
(bf16) when there is one. Resumable: a checkpoint (adapter, optimizer, scheduler, step) is
written every `checkpoint_every` steps, and a rerun with the same output folder continues
from the latest one. The loss counts completion tokens only.

    shopbot finetune train --data data/sft/train.jsonl --out adapters/mine
    python -m finetune.train --data data/sft/train.jsonl --out adapters/mine   # bare machine

The output folder holds the adapter (adapter_config.json, adapter_model.safetensors, stored
in fp16 to stay small) and manifest.json: base model, data hash, hyper-parameters, losses.
Needs only torch, transformers, peft and accelerate, so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bot.lm.decoding import end_of_turn_id
from bot.lm.loading import DEFAULT_LM, resolve_model

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    data: Path = field(metadata={"help": "Training JSONL (rows with prompt and completion)."})
    out: Path = field(metadata={"help": "Folder for the adapter, manifest and checkpoints."})
    base_model: str = field(default=DEFAULT_LM, metadata={"help": "'default' or HF id/path."})
    data_dir: Path = field(default=Path(".shopbot"), metadata={"help": "Model cache folder."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the data."})
    max_steps: int = field(default=0, metadata={"help": "Stop after this many steps (0 = off)."})
    batch_size: int = field(default=32, metadata={"help": "Examples per optimizer step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps warming up."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    max_length: int = field(default=384, metadata={"help": "Tokens per example, cut beyond."})
    checkpoint_every: int = field(default=200, metadata={"help": "Steps between checkpoints."})
    seed: int = field(default=0, metadata={"help": "Seed for order, init and dropout."})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda."})
    validation: Path | None = field(
        default=None, metadata={"help": "JSONL scored (loss per task) after training."}
    )

    def __post_init__(self) -> None:
        self.data, self.out, self.data_dir = Path(self.data), Path(self.out), Path(self.data_dir)
        self.validation = Path(self.validation) if self.validation else None
        for name in ("batch_size", "lora_r", "lora_alpha", "max_length", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, but got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("epochs or max_steps must be > 0")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), but got {self.learning_rate}")

    def hyper_parameters(self) -> dict[str, Any]:
        skip = {"data", "out", "data_dir", "device", "validation"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def read_examples(path: Path) -> list[dict[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
                raise ValueError(f"{path}:{number}: a row needs string prompt and completion")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no examples")
    return rows


def tokenize_example(tokenizer: Any, row: dict[str, str], max_length: int) -> tuple[list, list]:
    """Token ids and labels; the prompt's labels are -100 so only the completion is learnt.
    Prompt and completion are tokenized apart, exactly as the parser feeds them."""
    prompt = tokenizer.encode(row["prompt"], add_special_tokens=False)
    answer = tokenizer.encode(row["completion"], add_special_tokens=False)
    answer.append(end_of_turn_id(tokenizer))
    prompt = prompt[-max(1, max_length - len(answer)) :]
    ids = (prompt + answer)[:max_length]
    labels = ([-100] * len(prompt) + answer)[:max_length]
    return ids, labels


def collate(batch: list[tuple[list, list]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted(out.glob("checkpoints/step-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def train(config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) and save the adapter; returns the manifest."""
    import torch
    from accelerate import Accelerator
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    accelerator = Accelerator(cpu=cpu, mixed_precision="no" if cpu else "bf16")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    source = resolve_model(config.base_model, config.data_dir)
    tokenizer = AutoTokenizer.from_pretrained(source)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    rows = read_examples(config.data)
    examples = [tokenize_example(tokenizer, row, config.max_length) for row in rows]
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = config.max_steps or math.ceil(steps_per_epoch * config.epochs)

    resume = latest_checkpoint(config.out)
    if resume is not None:
        model = PeftModel.from_pretrained(base, str(resume / "adapter"), is_trainable=True)
    else:
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(LORA_TARGETS),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, lora)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    schedule = get_cosine_schedule_with_warmup(
        optimizer, max(1, int(total * config.warmup_ratio)), total
    )
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    step, losses = 0, []
    if resume is not None:
        state = torch.load(resume / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, losses = state["step"], state["losses"]

    started = time.perf_counter()
    model.train()
    bar = tqdm(total=total, initial=step, desc="finetune", disable=not progress, unit="step")
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        order = list(range(len(examples)))
        random.Random(config.seed * 1000 + epoch).shuffle(order)
        for start in range(offset * config.batch_size, len(order), config.batch_size):
            if step >= total:
                break
            batch = collate([examples[i] for i in order[start : start + config.batch_size]], pad_id)
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            losses.append(round(float(loss.detach()), 4))
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
            if step % config.checkpoint_every == 0 and step < total:
                _save_checkpoint(accelerator.unwrap_model(model), optimizer, schedule, step,
                                 losses, config.out)  # fmt: skip
    bar.close()
    manifest = {
        "base_model": config.base_model,
        "base_source": Path(source).name if Path(source).exists() else source,
        "data": config.data.name,
        "data_hash": _file_hash(config.data),
        "examples": len(examples),
        "steps": total,
        "resumed_from": int(resume.name.split("-")[1]) if resume is not None else None,
        "hyper_parameters": config.hyper_parameters(),
        "train_loss_first_20": _mean(losses[:20]),
        "train_loss_last_20": _mean(losses[-20:]),
        "train_seconds": round(time.perf_counter() - started, 1),
        "device": str(accelerator.device),
        "metrics": {},
    }
    if config.validation is not None:
        manifest["metrics"]["validation_loss"] = validation_loss(
            model, tokenizer, read_examples(config.validation), config, accelerator.device
        )
    save_adapter(accelerator.unwrap_model(model), config.out, manifest)
    shutil.rmtree(config.out / "checkpoints", ignore_errors=True)
    return manifest


def validation_loss(model, tokenizer, rows, config: TrainConfig, device) -> dict[str, float]:
    """Mean completion-token loss per task, teacher-forced."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    totals: dict[str, list[float]] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), config.batch_size):
            chunk = rows[start : start + config.batch_size]
            examples = [tokenize_example(tokenizer, row, config.max_length) for row in chunk]
            batch = {k: v.to(device) for k, v in collate(examples, pad_id).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            logits = logits.logits[:, :-1].float()
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), labels, ignore_index=-100, reduction="none"
            )
            counts = (labels != -100).sum(1).clamp(min=1)
            for row, loss in zip(chunk, (losses.sum(1) / counts).tolist(), strict=True):
                totals.setdefault(row.get("task", "all"), []).append(loss)
    model.train()
    return {task: round(sum(v) / len(v), 4) for task, v in sorted(totals.items())}


def save_adapter(model: Any, out: Path, manifest: dict[str, Any]) -> None:
    """Adapter weights in fp16 (half the size, no measurable loss for LoRA) + manifest."""
    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model card
    config_path = out / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = manifest["base_model"]  # not a temp path
    config_path.write_text(json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8")
    weights_path = out / "adapter_model.safetensors"
    weights = {k: v.to(torch.float16) for k, v in load_file(str(weights_path)).items()}
    save_file(weights, str(weights_path))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _save_checkpoint(model, optimizer, schedule, step, losses, out: Path) -> None:
    import torch

    folder = out / "checkpoints" / f"step-{step}"
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial / "adapter"))
    state = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
             "step": step, "losses": losses}  # fmt: skip
    torch.save(state, partial / "trainer.pt")
    partial.rename(folder)
    for older in out.glob("checkpoints/step-*"):
        if older != folder and not older.name.endswith(".partial"):
            shutil.rmtree(older, ignore_errors=True)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _file_hash(path: Path) -> str:
    from finetune.dataset import file_hash

    return file_hash(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for spec in fields(TrainConfig):
        required = spec.name in ("data", "out")
        kind = {"float": float, "int": int}.get(str(spec.type), str)
        parser.add_argument(f"--{spec.name.replace('_', '-')}", type=kind, required=required,
                            default=None if required else spec.default,
                            help=spec.metadata.get("help"))  # fmt: skip
    args = vars(parser.parse_args(argv))
    print(json.dumps(train(TrainConfig(**args)), indent=2))


if __name__ == "__main__":
    main()
