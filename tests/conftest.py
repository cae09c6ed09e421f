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
    from training.tiny_model import TinyModelSpec, build_random_model

    out = tmp_path_factory.mktemp("tiny-qwen25vl")
    spec = TinyModelSpec(text_hidden=64, text_layers=2, text_heads=2, text_kv_heads=1, text_intermediate=128,
                         vision_hidden=64, vision_depth=2, vision_heads=2, vision_intermediate=128,
                         vocab_size=600)
    return build_random_model(out, spec, seed=0)


@pytest.fixture(scope="session")
def inspector(tiny_model_dir):
    """A loaded `Inspector` on the random tiny model (short generations keep tests fast)."""
    from lriad_desktop.core.engine import Inspector

    return Inspector(tiny_model_dir, device="cpu", max_new_tokens=12).load()
