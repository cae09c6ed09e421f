"""Shared fixtures: an isolated data dir, offscreen Qt, and a tiny random-init Qwen2.5-VL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own user data dir: no test touches the real one."""
    monkeypatch.setenv("LRIAD_DATA_DIR", str(tmp_path_factory.mktemp("lriad-data")))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-init Qwen2.5-VL of a few million parameters, built from config (real transformers)."""
    from training.bundled_model.tiny_model import TinyModelSpec, build_random_model

    out = tmp_path_factory.mktemp("tiny-qwen25vl")
    spec = TinyModelSpec(text_hidden=64, text_layers=2, text_heads=2, text_kv_heads=1, text_intermediate=128,
                         vision_hidden=64, vision_depth=2, vision_heads=2, vision_intermediate=128,
                         vocab_size=600)
    return build_random_model(out, spec, seed=0)


@pytest.fixture(scope="session")
def inspector(tiny_model_dir):
    """A loaded `Inspector` on the random tiny model (short generations keep tests fast)."""
    from lriad_desktop.core.backends.engine import Inspector

    return Inspector(tiny_model_dir, device="cpu", max_new_tokens=12).load()


class ModelServer:
    """A real `transformers serve` process on 127.0.0.1 serving one model folder (fp32 on the CPU, as the
    in-process engine runs there)."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        import socket
        import subprocess
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.model_dir = model_dir
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        code = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; sys.exit(main())"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "serve", str(model_dir), "--device", "cpu", "--dtype", "float32",
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 180.0) -> str:
        """'' once /health answers; else why the server did not come up."""
        import time

        import httpx2

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"transformers serve exited with {self.process.returncode}: " + self.log_tail()
            try:
                if httpx2.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return ""
            except httpx2.HTTPError:
                pass
            time.sleep(0.5)
        return f"transformers serve did not answer /health within {timeout:.0f} s: " + self.log_tail()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-600:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


def start_model_server(model_dir: Path, log_path: Path) -> ModelServer:
    """Start `transformers serve` on `model_dir`, or skip the test with the reason it can't run."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        pytest.skip(f"transformers serve needs the serving extra (pip install 'transformers[serving]'): {err}")
    server = ModelServer(model_dir, log_path)
    problem = server.wait_ready()
    if problem:
        server.stop()
        pytest.skip(f"the model server could not start: {problem}")
    return server


@pytest.fixture(scope="session")
def model_server(tmp_path_factory):
    """The bundled model served over the OpenAI API by a real `transformers serve` (one for the session)."""
    from lriad_desktop.core.paths import bundled_model_dir

    server = start_model_server(bundled_model_dir(), tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    server.stop()
