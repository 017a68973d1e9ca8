"""Dataset building, LoRA training with resume, and `shopbot eval intents`, on tiny inputs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from transformers import AutoTokenizer

import finetune.train as training
from bot.cli import main
from bot.lm.loading import load_lm
from finetune.dataset import DatasetSizes, build_dataset, read_jsonl
from finetune.train import TrainConfig, train
from retrieval.demo.catalog import generate_catalog
from retrieval.policies import load_policy_docs

SUPPORT = [
    ("cancel purchase 113542617735902", "cancel_order"),
    ("i want to cancel order 00123842", "cancel_order"),
    ("how do I cancel my order", "cancel_order"),
    ("where is my package", "track_order"),
    ("track order 732201349959 please", "track_order"),
    ("track my parcel", "track_order"),
    ("help me reset my password", "recover_password"),
    ("forgot my password, mail me at a@b.com", "recover_password"),
    ("cannot log in, lost password", "recover_password"),
]
OUT_OF_SCOPE = [
    ("translate hello to french", "translate"),
    ("say thanks in german", "translate"),
    ("book a flight to rome", "book_flight"),
    ("flights to paris tomorrow", "book_flight"),
    ("what is the meaning of life", "oos"),
    ("tell me a joke about cats", "oos"),
]


@pytest.fixture
def shared_data(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    with open(folder / "customer_support_intents.dev.jsonl", "w") as handle:
        for text, intent in SUPPORT:
            handle.write(json.dumps({"text": text, "intent": intent}) + "\n")
    with open(folder / "out_of_scope.dev.jsonl", "w") as handle:
        for text, topic in OUT_OF_SCOPE:
            row = {"text": text, "intent": "out_of_scope", "clinc_intent": topic}
            handle.write(json.dumps(row) + "\n")
    return folder


def build(tiny_lm_dir, shared_data, out, seed=0):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    sizes = DatasetSizes(shopping_train=40, shopping_validation=10, replies_train=10)
    return build_dataset(tokenizer, generate_catalog(60), load_policy_docs(), out,
                         shared_data=shared_data, sizes=sizes, seed=seed)  # fmt: skip


def test_dataset_is_deterministic_and_keeps_validation_apart(tiny_lm_dir, shared_data, tmp_path):
    first = build(tiny_lm_dir, shared_data, tmp_path / "a")
    again = build(tiny_lm_dir, shared_data, tmp_path / "b")
    assert first["data_hash"] == again["data_hash"]
    train_rows = read_jsonl(tmp_path / "a" / "train.jsonl")
    held_out = read_jsonl(tmp_path / "a" / "intents.validation.jsonl")
    assert {r["task"] for r in train_rows} == {"parse", "reply"}
    assert first["support"]["validation"] >= 3  # every intent keeps a share
    prompts = "\n".join(r["prompt"] for r in train_rows)
    for row in held_out:
        assert f"Shopper: {row['text']}<" not in prompts
    topics_held_out = {r["text"] for r in held_out if r["intent"] == "out_of_scope"}
    assert topics_held_out, "whole out-of-scope topics are held out"
    completions = [r["completion"] for r in train_rows]
    assert any("order_id=" in c for c in completions)
    assert any("email=a@b.com" in c for c in completions)


def test_training_saves_an_adapter_that_loads_and_resumes_after_a_crash(
    tiny_lm_dir, shared_data, tmp_path, monkeypatch
):
    build(tiny_lm_dir, shared_data, tmp_path / "sft")
    config = TrainConfig(data=tmp_path / "sft" / "train.jsonl", out=tmp_path / "adapter",
                         base_model=str(tiny_lm_dir), max_steps=3, batch_size=4,
                         checkpoint_every=1, device="cpu",
                         validation=tmp_path / "sft" / "validation.jsonl")  # fmt: skip

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_adapter", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    assert (tmp_path / "adapter" / "checkpoints" / "step-2").is_dir()
    monkeypatch.undo()

    manifest = train(config, progress=False)
    assert manifest["resumed_from"] == 2 and manifest["steps"] == 3
    assert manifest["data_hash"] and manifest["hyper_parameters"]["lora_r"] == 8
    assert set(manifest["metrics"]["validation_loss"]) == {"parse"}
    saved = json.loads((tmp_path / "adapter" / "manifest.json").read_text())
    assert saved["base_model"] == str(tiny_lm_dir)
    assert not (tmp_path / "adapter" / "checkpoints").exists()
    loaded = load_lm(str(tiny_lm_dir), adapter=tmp_path / "adapter", dtype="float32")
    assert loaded.adapter == str(tmp_path / "adapter")


def test_training_refuses_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(data=tmp_path / "x.jsonl", out=tmp_path, batch_size=0)


def test_eval_intents_reports_the_contract_fields_and_skips_bad_rows(
    tiny_lm_dir, tmp_path, monkeypatch
):
    data = tmp_path / "intents.jsonl"
    data.write_text(
        json.dumps({"text": "where is my order", "intent": "track_order"}) + "\n"
        + json.dumps({"text": "weather in paris", "intent": "out_of_scope"}) + "\n"
        + "{not json\n"
        + json.dumps({"text": "hi", "intent": "no_such_intent"}) + "\n"
    )  # fmt: skip
    monkeypatch.setenv("SHOPBOT_LM_MODEL", str(tiny_lm_dir))
    monkeypatch.setenv("SHOPBOT_LM_DTYPE", "float32")
    result = CliRunner().invoke(
        main, ["eval", "intents", "--data", str(data), "--no-adapter", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["examples"] == 2
    for key in ("accuracy", "macro_f1", "out_of_scope_recall", "per_intent"):
        assert key in report
    assert "line 3" in result.stderr or ":3: skipped" in result.stderr
    assert ":4: skipped: unknown intent" in result.stderr
