"""The tiny-model builder and the supervised recipe's data path, on real transformers classes."""

import json

import numpy as np
import torch

from lriad_desktop.core.inspection.coordinates import CoordinateFrame, ModelGeometry, read_model_geometry
from lriad_desktop.core.inspection.parsing import parse_completion
from training.synthetic_data.samples import generate_sample
from training.synthetic_data.targets import box_occupancy, completion_for, grpo_row_from_sample, model_frame_defects
from training.bundled_model.tiny_model import GRAMMAR_TOKENS, QWEN_SPECIAL_TOKENS, build_tokenizer

GEO = ModelGeometry(CoordinateFrame.MODEL_PIXELS, 14, 2, 56 * 56, 112 * 112)


def test_tokenizer_tokens_and_template():
    tok = build_tokenizer(["Step 1: a washer with a scratch in the upper left."], vocab_size=400,
                          number_tokens=300, phrase_merges=True)
    for t in QWEN_SPECIAL_TOKENS + GRAMMAR_TOKENS:
        assert tok.convert_tokens_to_ids(t) != tok.unk_token_id
    ids = tok("[123, 7, 299]")["input_ids"]
    assert "123" in tok.convert_ids_to_tokens(ids) and "299" in tok.convert_ids_to_tokens(ids)
    text = "<think>Step 1: ok</think><answer>{}</answer>"
    # the grammar tags survive skip_special_tokens; the chat markers do not
    assert tok.decode(tok(text + "<|im_end|>")["input_ids"], skip_special_tokens=True) == text
    chat = tok.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
                                   tokenize=False, add_generation_prompt=True)
    assert "<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>" in chat
    assert chat.endswith("<|im_start|>assistant\n")


def test_saved_tiny_model_is_a_stock_qwen25vl(tiny_model_dir):
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl" and cfg["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert read_model_geometry(tiny_model_dir).frame is CoordinateFrame.MODEL_PIXELS
    mrope = cfg["text_config"]["rope_parameters"]["mrope_section"]
    head_dim = cfg["text_config"]["hidden_size"] // cfg["text_config"]["num_attention_heads"]
    assert sum(mrope) == head_dim // 2


def test_targets_are_in_the_model_frame_and_parse_back():
    sample = generate_sample(np.random.default_rng([5, 1]), kind="metal", defect="hole", size=(300, 200))
    text = completion_for(sample, GEO, np.random.default_rng(0))
    parsed = parse_completion(text)
    assert parsed.ok and parsed.anomaly and parsed.valid_json
    (label, box), = model_frame_defects(sample, GEO)
    assert parsed.defects[0].label == "hole" and parsed.defects[0].box == tuple(float(v) for v in box)
    assert all(0 <= v <= 112 for v in box)  # 300x200 resizes to 112x84 (factor 28, max 112*112 px)
    occ = box_occupancy(sample, GEO)
    assert occ.shape == (6, 8) and occ.max() > 0 and occ.dtype == np.float32
    row = grpo_row_from_sample(sample, GEO)
    assert row["defect_class"] == "hole" and row["frame_size"] == [112, 84] and row["boxes"][0][2] > row["boxes"][0][0]
    good = generate_sample(np.random.default_rng([5, 2]), defect=False)
    assert box_occupancy(good, GEO).max() == 0 and grpo_row_from_sample(good, GEO)["defect_class"] == "good"


def test_sft_step_runs_and_masks_the_prompt(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from training.bundled_model.sft import AuxiliaryHeads, SFTConfig, compute_losses, encode_batch

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    geo = read_model_geometry(tiny_model_dir)
    samples = [generate_sample(np.random.default_rng([9, i]), size=(120, 96)) for i in range(3)]
    batch = encode_batch(processor, samples, geo, np.random.default_rng(0))
    ids, labels = batch.inputs["input_ids"], batch.labels
    image_id = model.config.image_token_id
    assert not ((labels != -100) & (ids == image_id)).any()  # no loss on the prompt
    first = int((labels[0] != -100).nonzero()[0])
    assert processor.tokenizer.decode(ids[0, first:first + 1]) == "<think>"
    assert batch.occupancy.shape[0] == int((ids == image_id).sum()) == batch.position.shape[0]
    heads = AuxiliaryHeads(model.config.vision_config.out_hidden_size, model.config.text_config.hidden_size, 2, 7)
    losses = compute_losses(model, heads, batch, SFTConfig(), torch.tensor([0]))
    assert torch.isfinite(losses["loss"]) and losses["aux_occupancy"] > 0
    losses["loss"].backward()
    assert model.model.visual.patch_embed.proj.weight.grad is not None
