"""The engine on a real (random-init) Qwen2.5-VL built from config: load, inspect, batch, adapters."""

import json

import pytest
from PIL import Image

from lriad_desktop.core.engine import Inspector, ModelFolderError, validate_model_folder
from lriad_desktop.core.finding import Verdict


def test_inspect_one_and_batch(inspector):
    images = [Image.new("RGB", (301, 217), (90, 90, 90)), Image.new("RGB", (97, 400), (200, 10, 10))]
    one = inspector.inspect(images[0], "washer", "a.png")
    assert one.verdict in set(Verdict)
    assert one.model_version == inspector.model_version and one.image_size == (301, 217)
    assert one.timings["generate_ms"] > 0 and one.object_name == "washer"
    batch = inspector.inspect_batch(images, ["washer", "bottle"])
    assert [f.image_size for f in batch] == [(301, 217), (97, 400)]
    # a random model writes nonsense: it must come back as a finding, never an exception
    assert all(f.verdict is Verdict.UNPARSED or f.raw_text for f in batch)
    # left padding: the first image's output does not depend on its batch mate
    assert batch[0].raw_text == one.raw_text
    assert inspector.device == "cpu"


def test_missing_and_wrong_folders(tmp_path, tiny_model_dir):
    with pytest.raises(ModelFolderError, match="not found"):
        Inspector(tmp_path / "nope")
    with pytest.raises(ModelFolderError, match="no config.json"):
        Inspector(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelFolderError, match="supported"):
        Inspector(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ModelFolderError, match="safetensors"):
        Inspector(tmp_path)
    with pytest.raises(ModelFolderError, match="Adapter folder not found"):
        Inspector(tiny_model_dir, adapter_dir=tmp_path / "none")
    assert validate_model_folder(tiny_model_dir).model_type == "qwen2_5_vl"


def test_lora_adapter_on_top(tmp_path, tiny_model_dir):
    """A PEFT adapter folder loads on the base model and names the model version."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    torch.manual_seed(1)
    adapter = tmp_path / "adapter-v1"
    peft_model.save_pretrained(adapter, safe_serialization=True)
    insp = Inspector(tiny_model_dir, adapter_dir=adapter, device="cpu", max_new_tokens=6).load()
    assert insp.model_version == f"{tiny_model_dir.name}+adapter-v1"
    f = insp.inspect(Image.new("RGB", (120, 90)), "screw")
    assert f.model_version.endswith("+adapter-v1")
