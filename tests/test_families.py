"""Every family of the family table, from a random-init folder built from config (no download):
validate → inspect a batch of two sizes → coordinates against the family's own processor →
one GRPO step with a LoRA → the adapter loads → `lriad --self-test --model DIR` and `lriad inspect`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.coordinates import (CoordinateFrame, model_input_size, read_model_geometry, to_image_pixels,
                                            to_model_frame)
from lriad_desktop.core.backends.engine import Inspector, ModelFolderError, validate_model_folder
from lriad_desktop.core.inspection.families import FAMILIES, family_for, prompt_opens_think, with_opened_think
from lriad_desktop.core.inspection.finding import Box, Verdict
from lriad_desktop.core.training_runs.protocol import TrainingEvent
from training.bundled_model.tiny_model import FAMILY_TYPES, TinyModelSpec, build_family_model

SPEC = TinyModelSpec(text_hidden=64, text_layers=2, text_heads=2, text_kv_heads=1, text_intermediate=128,
                     vision_hidden=64, vision_depth=2, vision_heads=2, vision_intermediate=128, vocab_size=600)
SIZES = [(301, 217), (97, 400), (640, 480), (1366, 769)]


@pytest.fixture(scope="session", params=FAMILY_TYPES)
def family_dir(request, tmp_path_factory):
    """A random-init model folder of each family (weights drawn wide enough that outputs vary)."""
    out = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return build_family_model(request.param, out, SPEC, seed=0, init_std=0.2)


@pytest.fixture(scope="session")
def family_inspector(family_dir):
    """Free generation (the plumbing tests below); `test_constrained_inspection_reads_every_answer` holds
    answers to the grammar."""
    return Inspector(family_dir, device="cpu", max_new_tokens=10, grammar=False).load()


def test_the_table_covers_every_family_transformers_maps():
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    assert set(FAMILIES) == set(FAMILY_TYPES)
    for model_type, family in FAMILIES.items():
        assert model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        assert family.default_max_pixels == 1280 * (family.patch_size * 2) ** 2 and family.frame_source
    assert family_for("qwen2_5_vl").frame is CoordinateFrame.MODEL_PIXELS
    assert all(FAMILIES[t].frame is CoordinateFrame.NORM1000 for t in FAMILY_TYPES if t != "qwen2_5_vl")


def test_folder_validates_with_its_family(family_dir):
    info = validate_model_folder(family_dir)
    family = FAMILIES[info.model_type]
    assert info.family is family and info.geometry.frame is family.frame
    assert info.geometry.patch_size == family.patch_size and info.weights


def test_inspect_batch_of_two_sizes(family_inspector):
    images = [Image.new("RGB", (301, 217), (90, 90, 90)), Image.new("RGB", (97, 400), (200, 10, 10))]
    singles = [family_inspector.inspect(img, name) for img, name in zip(images, ["washer", "bottle"])]
    batch = family_inspector.inspect_batch(images, ["washer", "bottle"], ["a.png", "b.png"])
    assert [f.image_size for f in batch] == [(301, 217), (97, 400)]
    assert all(f.verdict is Verdict.UNPARSED or f.raw_text for f in batch)  # nonsense is a finding, not an error
    # left padding: an image's answer does not depend on its batch mate (the outputs vary, so this can fail)
    assert [f.raw_text for f in batch] == [f.raw_text for f in singles]
    assert singles[0].raw_text != singles[1].raw_text
    if FAMILIES[family_inspector.info.model_type].template_kwargs.get("enable_thinking"):
        assert all(f.raw_text.startswith("<think>") for f in batch)  # the template opened the think block


def test_constrained_inspection_reads_every_answer(family_dir):
    """Held to the grammar, a random-init folder of every family answers readably: a verdict with its score,
    and boxes inside each image of a batch of two sizes."""
    images = [Image.new("RGB", (301, 217), (90, 90, 90)), Image.new("RGB", (97, 400), (200, 10, 10))]
    inspector = Inspector(family_dir, device="cpu", max_new_tokens=16).load()
    findings = inspector.inspect_batch(images, ["washer", "bottle"], ["a.png", "b.png"])
    thinking = bool(FAMILIES[inspector.info.model_type].template_kwargs.get("enable_thinking"))
    for image, finding in zip(images, findings):
        assert finding.verdict is not Verdict.UNPARSED, finding.raw_text
        assert finding.anomaly_score is not None
        assert "</think><answer>{" in finding.raw_text and finding.raw_text.endswith("}</answer>")
        assert finding.raw_text.startswith("<think>") or not thinking
        for defect in finding.defects:
            box = defect.box  # None only for a box without area ([931, 111, 111, 111])
            assert box is None or 0 <= box.x1 <= box.x2 <= image.width and 0 <= box.y1 <= box.y2 <= image.height
    inspector.close()


def test_coordinates_match_the_familys_own_processor(family_dir, family_inspector):
    """The frame core computes is the input the family's processor really makes (image_grid_thw)."""
    processor = family_inspector._processor  # as the engine set it up: with the family's pixel budget
    geo = family_inspector.geometry
    assert type(processor).__name__ == {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}.get(
        family_inspector.info.model_type, "Qwen3VLProcessor")
    for w, h in SIZES:
        grid = processor.image_processor(images=[Image.new("RGB", (w, h))], return_tensors="pt")["image_grid_thw"]
        _, gh, gw = grid[0].tolist()
        assert model_input_size((w, h), geo) == (gw * geo.patch_size, gh * geo.patch_size)
        box = Box(w * 0.1, h * 0.2, w * 0.6, h * 0.9)
        back = to_image_pixels(to_model_frame(box, (w, h), geo), (w, h), geo)
        assert back.as_list(None) == pytest.approx(box.as_list(None), abs=1e-6)
    # the engine's mapping uses the same frame: a whole-frame box is the whole image
    full = (0, 0, 1000, 1000) if geo.frame is CoordinateFrame.NORM1000 else (0, 0, *model_input_size((640, 480), geo))
    assert to_image_pixels(full, (640, 480), geo).as_list() == [0, 0, 640, 480]


@pytest.mark.slow
def test_one_grpo_step_with_a_lora_and_the_adapter_loads(family_dir, tmp_path):
    from training.recipes.grpo import GRPORecipe, run_grpo
    from training.synthetic_data.samples import generate_sample
    from training.synthetic_data.targets import grpo_row_from_sample

    geo = read_model_geometry(family_dir)
    rows = [grpo_row_from_sample(generate_sample(np.random.default_rng([3, i]), size=(96, 80)), geo)
            for i in range(4)]
    events: list[TrainingEvent] = []
    out = tmp_path / "adapter-v1"
    run_grpo(family_dir, rows, GRPORecipe.cpu_tiny(max_steps=1, batch_size=4, max_completion_length=8), out,
             emit=events.append)
    assert [e.kind for e in events] == ["setup", "step", "saved"]
    targets = json.loads((out / "adapter_config.json").read_text())["target_modules"]
    family = FAMILIES[json.loads((family_dir / "config.json").read_text())["model_type"]]
    assert all(name in targets for name in family.lora_extra_targets)
    insp = Inspector(family_dir, adapter_dir=out, device="cpu", max_new_tokens=4).load()
    assert insp.inspect(Image.new("RGB", (90, 70)), "washer").model_version.endswith("+adapter-v1")
    lora = [n for n, _ in insp._model.named_parameters() if "lora_A" in n]
    assert lora and all("language_model" in n for n in lora)
    if family.lora_extra_targets:  # Qwen3.5: the linear-attention layers are adapted too
        assert any("linear_attn" in n for n in lora)


@pytest.mark.slow
def test_self_test_and_inspect_from_the_command_line(family_dir, capsys):
    from lriad_desktop.cli.commands import main

    assert main(["--self-test", "--model", str(family_dir)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("lriad self-test OK") and family_dir.name in line and "GRPO step" in line
    assert main(["inspect", "resources/samples/washer_scratch.jpg", "--model", str(family_dir), "--json",
                 "--max-new-tokens", "6"]) == 0
    finding = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert finding["image_size"] == list(Image.open("resources/samples/washer_scratch.jpg").size)


def test_unknown_model_type_names_the_families_and_lriad_json(tmp_path, tiny_model_dir):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"):
        src = tiny_model_dir / name
        (tmp_path / name).write_bytes(src.read_bytes() if src.exists()
                                      else (tiny_model_dir / "processor_config.json").read_bytes())
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "llava"}))
    with pytest.raises(ModelFolderError) as err:
        validate_model_folder(tmp_path)
    message = str(err.value)
    assert "'llava'" in message and "Qwen3.5 (qwen3_5)" in message and "Qwen2-VL (qwen2_vl)" in message
    assert "lriad.json" in message and '"coordinate_frame": "norm1000"' in message
    (tmp_path / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels", "max_pixels": 3136}))
    info = validate_model_folder(tmp_path)  # declared: it may be tried
    assert info.family is None and info.geometry.frame is CoordinateFrame.MODEL_PIXELS
    assert info.geometry.max_pixels == 3136
    (tmp_path / "lriad.json").write_text(json.dumps({"coordinate_frame": "pixels"}))
    with pytest.raises(ModelFolderError, match="coordinate_frame 'pixels'"):
        validate_model_folder(tmp_path)


def test_lriad_json_overrides_frame_and_budget(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen3_5"}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"patch_size": 16, "merge_size": 2, "size": {"shortest_edge": 65536, "longest_edge": 16777216}}))
    geo = read_model_geometry(tmp_path)  # a real Qwen3.5 processor allows 16.7 MP; the family budget is 1280 tokens
    assert geo.frame is CoordinateFrame.NORM1000 and geo.max_pixels == 1280 * 32 * 32 and geo.min_pixels == 65536
    (tmp_path / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels", "max_pixels": 2_000_000}))
    geo = read_model_geometry(tmp_path)
    assert geo.frame is CoordinateFrame.MODEL_PIXELS and geo.max_pixels == 2_000_000


def test_thinking_template_helpers():
    assert prompt_opens_think("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_think("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert not prompt_opens_think("<|im_start|>assistant\n")
    assert with_opened_think("Step 1: ok</think><answer>{}</answer>") == "<think>Step 1: ok</think><answer>{}</answer>"
    assert with_opened_think("<think>x</think>") == "<think>x</think>"


def test_tiny_model_command_writes_a_folder_the_app_loads(tmp_path, capsys):
    from training.bundled_model.tiny_model import main

    out = tmp_path / "qwen3_vl"
    assert main(["--family", "qwen3_vl", "--out", str(out)]) == 0
    assert validate_model_folder(out).model_type == "qwen3_vl"
    assert main(["--family", "qwen3_vl", "--out", str(out)]) == 2  # never overwrites a folder
    assert "not an empty folder" in capsys.readouterr().err
