"""Shared fixtures: a deterministic hash embedder, temp data dirs, a real Chroma server."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.settings import Settings, load_settings
from retrieval.embeddings import Embedder, EmbeddingCache
from retrieval.index import CatalogIndex

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class HashEmbedder(Embedder):
    """Bag-of-words vectors from word hashes: same words, close vectors. Counts its work."""

    def __init__(self, cache: EmbeddingCache | None = None, dimension: int = 64) -> None:
        super().__init__("hash-test", cache=cache)
        self._dimension = dimension
        self.encoded = 0

    def load(self) -> None:
        pass

    def _encode(self, texts):
        self.encoded += len(texts)
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                digest = hashlib.md5(word.encode()).digest()
                vectors[row, digest[0] % self._dimension] += 1.0
            vectors[row, -1] += 0.01  # never all zeros
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SHOPBOT_* settings leak in from the caller; the data dir is per test."""
    for name in list(os.environ):
        if name.startswith("SHOPBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a store in a temporary folder. Closeness to the policies and the intent
    head decide no route here: the hash embedder's similarities mean nothing
    (tests/test_service_questions.py tests both with the real embedder)."""
    return load_settings(
        data_dir=tmp_path / "data",
        ingest_batch_size=4,
        policy_match=1.01,
        policy_passage_match=1.01,
        policy_question_match=1.01,
        intent_head="none",  # trained on the real embedder's vectors, not the hash embedder's
    )


@pytest.fixture
def embedder(tmp_path: Path) -> HashEmbedder:
    return HashEmbedder(cache=EmbeddingCache(tmp_path / "embeddings.sqlite"))


@pytest.fixture
def catalog(settings: Settings, embedder: HashEmbedder) -> Iterator[CatalogIndex]:
    index = CatalogIndex.open(settings, embedder=embedder)
    yield index
    index.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (`chroma run`, shipped with chromadb) on loopback."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("w")
    process = subprocess.Popen(
        [chroma, "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    import chromadb

    deadline = time.monotonic() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            break
        except Exception as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"chroma server did not start: {(path / 'server.log').read_text()}"
                ) from exc
            time.sleep(0.3)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
    log.close()


def _postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or where Debian's package puts it."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server (Debian's package) on loopback, in a temporary folder, run as
    the `postgres` user when the tests run as root; its URL without a database name. Skips
    when the server or the driver cannot be had."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install 'shopbot[postgres]'")
    # Not under pytest's folder: as root that is closed to the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="shopbot-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "shopbot", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=300"
    )
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
         "start"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield f"postgresql://shopbot@127.0.0.1:{port}"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server: str) -> str:
    """A new, empty PostgreSQL database on the test server, for one test."""
    import psycopg

    name = f"t_{os.urandom(6).hex()}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Llama with the real SmolLM2 tokenizer, saved to a folder:
    loads in well under a second, so unit tests exercise the real loading and decoding code."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from bot.lm.loading import default_gguf_path

    gguf = default_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-lm")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm(tiny_lm_dir: Path):
    from bot.lm.loading import load_lm

    return load_lm(str(tiny_lm_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def default_lm(tmp_path_factory: pytest.TempPathFactory):
    """The real default LM with the shipped adapter (converted once per test session)."""
    from bot.lm.loading import load_lm
    from finetune import DEFAULT_ADAPTER

    return load_lm(data_dir=tmp_path_factory.mktemp("lm-cache"), adapter=DEFAULT_ADAPTER)


@pytest.fixture
def assistant(settings, shop, tiny_lm):
    """The chat assistant on the tiny LM, over the test module's own `shop` fixture."""
    from bot.dialogue.engine import Assistant

    opened = Assistant.open(settings, shop, lm=tiny_lm)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, through playwright) for the browser tests; they skip
    with the reason when it is missing (CI installs it)."""
    from browser import browser_unavailable, launch_chromium

    reason = browser_unavailable()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def staffed_client(settings, embedder, tiny_lm, monkeypatch):
    """The app of a keyed store ("chat-key", "admin-key") whose parser reads each message as
    `tests.test_admin.PARSES` says; the rest (routing, search, stores, HTTP) is the real one."""
    from tests.test_admin import PARSES
    from tests.test_api import make_client

    with make_client(
        settings, embedder, tiny_lm, chat_keys=["chat-key"], admin_keys=["admin-key"]
    ) as client:
        parser = client.app.state.chats.open().parser
        monkeypatch.setattr(parser, "parse", lambda text, *_: PARSES[text])
        yield client
