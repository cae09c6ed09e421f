"""The engine on a real (random-init) Qwen2.5-VL built from config: load, inspect, batch, adapters."""

import json

import pytest
from PIL import Image

from lriad_desktop.core.backends.engine import Inspector, ModelFolderError, validate_model_folder
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.inspection.parsing import parse_completion
from lriad_desktop.core.paths import bundled_model_dir


def test_inspect_one_and_batch(inspector):
    images = [Image.new("RGB", (301, 217), (90, 90, 90)), Image.new("RGB", (97, 400), (200, 10, 10))]
    one = inspector.inspect(images[0], "washer", "a.png")
    # the verdict is what the parser reads in the model's own text (greedy: the same text every time)
    parsed = parse_completion(one.raw_text)
    assert one.verdict is ((Verdict.ANOMALOUS if parsed.anomaly else Verdict.NORMAL) if parsed.ok else Verdict.UNPARSED)
    assert inspector.inspect(images[0], "washer", "a.png").raw_text == one.raw_text
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


def test_lora_adapter_on_top(tmp_path):
    """A PEFT adapter folder loads on the base model, changes what it answers and names the model version.

    The bundled model, because it answers in sentences: the random tiny model writes the same blank
    tokens with or without a small adapter, which would prove nothing."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model_dir = bundled_model_dir()
    torch.manual_seed(1)
    base = AutoModelForImageTextToText.from_pretrained(model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter-v1"
    peft_model.save_pretrained(adapter, safe_serialization=True)
    image = Image.new("RGB", (120, 90), (128, 128, 128))
    plain = Inspector(model_dir, device="cpu", max_new_tokens=12).load().inspect(image, "screw")
    insp = Inspector(model_dir, adapter_dir=adapter, device="cpu", max_new_tokens=12).load()
    assert insp.model_version == f"{model_dir.name}+adapter-v1"
    f = insp.inspect(image, "screw")
    assert f.model_version.endswith("+adapter-v1") and not plain.model_version.endswith("+adapter-v1")
    assert plain.raw_text.startswith("<think>Step 1:") and f.raw_text != plain.raw_text


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_damaged_weights_are_refused_by_the_folder_check(tmp_path, tiny_model_dir):
    """The picker's check reads the safetensors header: a copy cut short, padded or with a broken header is one
    ModelFolderError naming the file, before anything loads."""
    import struct

    whole = (tiny_model_dir / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", whole[:8])[0]
    header = json.loads(whole[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    lying = dict(header, **{name: dict(header[name], shape=[s * 2 for s in header[name]["shape"]])})
    lying_bytes = json.dumps(lying).encode()
    cases = {
        "cut short": whole[: len(whole) // 2],
        "cut in its header": whole[: 8 + n // 2],
        "longer than its header says": whole + b"\0" * 64,
        "not a complete safetensors file": b"\xff" * 100,
        "empty": b"",
        "damaged safetensors header": whole[:9] + b"\x00" + whole[10:],
        "tensor sizes": struct.pack("<Q", len(lying_bytes)) + lying_bytes + whole[8 + n:],
    }
    for what, data in cases.items():
        folder = _copy(tiny_model_dir, tmp_path / what.replace(" ", "-"))
        (folder / "model.safetensors").write_bytes(data)
        with pytest.raises(ModelFolderError) as err:
            validate_model_folder(folder)
        message = str(err.value)
        assert message.startswith(str(folder / "model.safetensors")) and "\n" not in message, message
        assert "copy it again" in message
    # a sharded model missing a shard its index names
    sharded = _copy(tiny_model_dir, tmp_path / "sharded")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model.safetensors",
                                                                                   "b": "model-00002.safetensors"}}))
    with pytest.raises(ModelFolderError, match="lacks 1 weights file"):
        validate_model_folder(sharded)


def test_every_adapter_problem_is_one_line(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from training.bundled_model.tiny_model import TinyModelSpec, build_random_model

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    good = tmp_path / "good"
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(good)
    cut = _copy(good, tmp_path / "cut")
    with open(cut / "adapter_model.safetensors", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(ModelFolderError, match="adapter_model.safetensors is cut short"):
        Inspector(tiny_model_dir, adapter_dir=cut)
    bad_config = _copy(good, tmp_path / "bad-config")
    (bad_config / "adapter_config.json").write_text('{"r": ')
    with pytest.raises(ModelFolderError, match="adapter_config.json can't be read"):
        Inspector(tiny_model_dir, adapter_dir=bad_config)
    # an adapter trained on another base: the sizes differ, found only when it loads
    other_dir = build_random_model(tmp_path / "other-base", TinyModelSpec(
        text_hidden=96, text_layers=2, text_heads=2, text_kv_heads=1, text_intermediate=128, vision_hidden=64,
        vision_depth=2, vision_heads=2, vision_intermediate=128, vocab_size=600), seed=0)
    other = AutoModelForImageTextToText.from_pretrained(other_dir)
    foreign = tmp_path / "foreign"
    get_peft_model(other, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(foreign)
    with pytest.raises(ModelFolderError) as err:
        Inspector(tiny_model_dir, adapter_dir=foreign, device="cpu").load()
    assert str(err.value) == (f"Adapter {foreign} can't be loaded: its tensor sizes don't match the model "
                              "(an adapter of another base model, or a wrong config.json)")


def test_load_errors_from_the_libraries_become_one_line(tmp_path, tiny_model_dir):
    """What transformers, tokenizers and jinja raise for a damaged folder is a ModelFolderError, one line."""
    template = _copy(tiny_model_dir, tmp_path / "template")
    for name in ("chat_template.jinja", "chat_template.json"):
        if (template / name).exists():
            (template / name).unlink()
    (template / "chat_template.jinja").write_text("{% for %}")
    tokenizer = _copy(tiny_model_dir, tmp_path / "tokenizer")
    (tokenizer / "tokenizer.json").write_text('{"version": "1.0"}')
    config = _copy(tiny_model_dir, tmp_path / "config")
    cfg = json.loads((config / "config.json").read_text())
    cfg.setdefault("text_config", {})["hidden_size"] = 128
    cfg["hidden_size"] = 128
    (config / "config.json").write_text(json.dumps(cfg))
    for folder, start in ((template, "The chat template of"), (tokenizer, "Model in"), (config, "Model in")):
        with pytest.raises(ModelFolderError) as err:
            Inspector(folder, device="cpu").load()
        message = str(err.value)
        assert message.startswith(f"{start} {folder} can't be loaded: ") and "\n" not in message, message
