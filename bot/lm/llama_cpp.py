"""llama.cpp's `llama-server` as a child process on loopback, for tests and benchmarks.

The binary is the one `.ci/build-llama-server` builds into the cache
(`~/.cache/shopbot/llama.cpp/<version>/bin/llama-server`), or `SHOPBOT_LLAMA_SERVER`.
In production run the server yourself (`llama-server -m exported/shopbot.q8_0.gguf`) and
point `lm_url` at it; nothing here is needed then.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from bot.lm.server import LMServerError

LLAMA_CPP_CACHE = Path.home() / ".cache" / "shopbot" / "llama.cpp"


def find_llama_server() -> Path | None:
    """`SHOPBOT_LLAMA_SERVER`, else the newest cached build, else None."""
    named = os.environ.get("SHOPBOT_LLAMA_SERVER")
    if named:
        return Path(named) if Path(named).is_file() else None
    builds = sorted(LLAMA_CPP_CACHE.glob("*/bin/llama-server"))
    return builds[-1] if builds else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """`llama-server -m GGUF` on a free loopback port; `start()` waits until it answers.

    >>> server = LlamaServer(Path("shopbot.q8_0.gguf"))   # doctest: +SKIP
    >>> server.start().url                                 # doctest: +SKIP
    'http://127.0.0.1:40123/v1'
    """

    def __init__(
        self,
        gguf: Path,
        binary: Path | None = None,
        threads: int = 2,
        context: int = 4096,
        parallel: int = 1,
    ) -> None:
        self.gguf = Path(gguf)
        self.binary = binary or find_llama_server()
        if self.binary is None:
            raise LMServerError("llama-server not found: run .ci/build-llama-server")
        self.threads = threads
        self.context = context  # shared by the `parallel` slots (continuous batching)
        self.parallel = parallel
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.gguf.with_suffix(f".{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait_s: float = 60.0) -> LlamaServer:
        import httpx

        command = [
            str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1",
            "--port", str(self.port), "-t", str(self.threads), "-c", str(self.context),
            "--parallel", str(self.parallel), "--no-webui",
        ]  # fmt: skip
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LMServerError(f"llama-server exited: {self.log_path.read_text()[-500:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LMServerError(f"llama-server did not answer within {wait_s:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
