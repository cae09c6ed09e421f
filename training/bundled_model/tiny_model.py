"""Build a small random-init Qwen vision-language model (tokenizer, processor, config, weights) from nothing.

Used by the tests (random-init models in session fixtures), by the recipe that trains the
bundled Qwen2.5-VL, and on the command line for any family of the family table:

    python -m training.bundled_model.tiny_model --family qwen3_5 --out /tmp/tiny-qwen3_5

Everything here is the stock transformers architecture of that family, with the family's own
processor class and the project's tokenizer: the folder loads with `AutoModelForImageTextToText`
and `AutoProcessor` like a real checkpoint of that family, no download needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

# The Qwen2.5-VL special tokens, in the order Qwen gives them ids right after the vocabulary.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Reasoning/answer tags are normal tokens so that they survive `skip_special_tokens`.
GRAMMAR_TOKENS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")

# The Qwen2-VL / Qwen2.5-VL chat template (images become vision_start, image_pad, vision_end).
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3.5's template opens a <think> block in the generation prompt unless `enable_thinking` is False
# (the official template does the same); the engine sets it from the family table.
QWEN35_CHAT_TEMPLATE = QWEN_VL_CHAT_TEMPLATE.replace(
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and "
    "enable_thinking is false %}<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}{% endif %}",
)

_BASE_CORPUS = (
    "You are a helpful assistant. Inspect the image of the product. Is there any defect? "
    "Think step by step, then answer. The surface looks normal and uniform; nothing is out "
    "of place. There is an anomaly in the upper left, upper centre, upper right, centre left, "
    "centre, centre right, lower left, lower centre, lower right of the part. "
    '{"anomaly": true, "defects": [{"label": "scratch", "bbox_2d": [12, 34, 56, 78]}]} '
    '{"anomaly": false, "defects": []} Step 1: Step 2: Step 3: Step 4: '
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Sizes of a small Qwen2.5-VL. Defaults give a few million parameters."""

    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 704
    rope_theta: float = 100.0
    vision_hidden: int = 192
    vision_depth: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 512
    vocab_size: int = 2048
    # Integers 0..number_tokens-1 as single tokens: a coordinate is then one classification.
    number_tokens: int = 0
    # Let BPE merge across spaces (frequent phrases become one token: fewer generation steps).
    phrase_merges: bool = False
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112
    max_position_embeddings: int = 4096
    # Vision blocks with full attention (None: all); the others attend within 112-px windows,
    # which holds the tower's cost at a larger pixel budget.
    vision_fullatt_blocks: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict)


def build_tokenizer(corpus: Iterable[str] = (), vocab_size: int = 2048, number_tokens: int = 0,
                    phrase_merges: bool = False):
    """Train a byte-level BPE tokenizer with the Qwen special tokens and chat template.

    `number_tokens` adds the integers below it as whole tokens (matched longest first, so
    "123" is one token); `phrase_merges` lets BPE merge across spaces. Returns a
    `transformers.PreTrainedTokenizerFast` ready to save next to a model.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not phrase_merges)
    tok.decoder = decoders.ByteLevel()
    n_reserved = len(QWEN_SPECIAL_TOKENS) + len(GRAMMAR_TOKENS) + number_tokens
    trainer = trainers.BpeTrainer(
        vocab_size=max(300, vocab_size - n_reserved),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
        max_token_length=24 if phrase_merges else None,
    )
    # Digits stay single characters in practice for coordinates: BPE may merge them, which is fine.
    texts = [_BASE_CORPUS] + list(corpus)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    fast.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    fast.add_tokens(list(GRAMMAR_TOKENS))
    if number_tokens:
        fast.add_tokens([str(i) for i in range(number_tokens)])
    fast.chat_template = QWEN_VL_CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_processor(tokenizer, spec: TinyModelSpec = TinyModelSpec()):
    """The stock `Qwen2_5_VLProcessor` with a small pixel budget."""
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size)
    video_processor = Qwen2VLVideoProcessor(size=size)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN_VL_CHAT_TEMPLATE,
    )


def build_config(tokenizer, spec: TinyModelSpec = TinyModelSpec()):
    """A `Qwen2_5_VLConfig` sized by `spec`, with token ids taken from `tokenizer`."""
    from transformers import Qwen2_5_VLConfig

    head_dim = spec.text_hidden // spec.text_heads
    half = head_dim // 2
    # M-RoPE sections (temporal, height, width) must sum to head_dim / 2.
    t = half // 4
    h = (half - t) // 2
    mrope = [t, h, half - t - h]
    ids = {t_: tokenizer.convert_tokens_to_ids(t_) for t_ in QWEN_SPECIAL_TOKENS}
    vocab = len(tokenizer)
    vocab = ((vocab + 63) // 64) * 64
    cfg = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab,
            hidden_size=spec.text_hidden,
            intermediate_size=spec.text_intermediate,
            num_hidden_layers=spec.text_layers,
            num_attention_heads=spec.text_heads,
            num_key_value_heads=spec.text_kv_heads,
            max_position_embeddings=spec.max_position_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta, "mrope_section": mrope},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=spec.vision_depth,
            hidden_size=spec.vision_hidden,
            intermediate_size=spec.vision_intermediate,
            num_heads=spec.vision_heads,
            out_hidden_size=spec.text_hidden,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=list(range(spec.vision_depth)) if spec.vision_fullatt_blocks is None
            else list(spec.vision_fullatt_blocks),
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    return cfg


def build_random_model_in_memory(spec: TinyModelSpec = TinyModelSpec(), corpus: Iterable[str] = (), seed: int = 0):
    """`(model, processor)`: a random-init Qwen2.5-VL and its processor, not yet saved."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(corpus, spec.vocab_size, spec.number_tokens, spec.phrase_merges)
    processor = build_processor(tokenizer, spec)
    cfg = build_config(tokenizer, spec)
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        do_sample=False,
    )
    return model, processor


def build_random_model(out_dir: Path, spec: TinyModelSpec = TinyModelSpec(), corpus: Iterable[str] = (),
                       seed: int = 0, coordinate_frame: str | None = None) -> Path:
    """Write a random-init Qwen2.5-VL folder (safetensors, tokenizer, processor) to `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, processor = build_random_model_in_memory(spec, corpus, seed)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    if coordinate_frame:
        (out_dir / "lriad.json").write_text(json.dumps({"coordinate_frame": coordinate_frame}, indent=2))
    return out_dir


# --- every family of the family table -------------------------------------------------------
FAMILY_TYPES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")


def _mrope(rotary_dim: int) -> list[int]:
    """(temporal, height, width) M-RoPE sections summing to half the rotary dimension."""
    half = rotary_dim // 2
    t = max(1, half // 4)
    h = (half - t) // 2
    return [t, h, half - t - h]


def _token_ids(tokenizer) -> tuple[dict, dict, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    vision = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    text = dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    return vision, text, ((len(tokenizer) + 63) // 64) * 64


def build_family_config(family: str, tokenizer, spec: TinyModelSpec = TinyModelSpec()):
    """The config of a small `family` model (one of `FAMILY_TYPES`) sized by `spec`, ids from `tokenizer`."""
    from transformers import Qwen2VLConfig, Qwen3_5Config, Qwen3_5MoeConfig, Qwen3VLConfig, Qwen3VLMoeConfig

    if family == "qwen2_5_vl":
        return build_config(tokenizer, spec)
    if family not in FAMILY_TYPES:
        raise ValueError(f"unknown family '{family}' (one of {', '.join(FAMILY_TYPES)})")
    vision_ids, text_ids, vocab = _token_ids(tokenizer)
    head_dim = spec.text_hidden // spec.text_heads
    text = dict(vocab_size=vocab, hidden_size=spec.text_hidden, intermediate_size=spec.text_intermediate,
                num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads,
                num_key_value_heads=spec.text_kv_heads, max_position_embeddings=spec.max_position_embeddings,
                **text_ids)
    if family == "qwen2_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": spec.rope_theta,
                                   "mrope_section": _mrope(head_dim)}
        vision = dict(depth=spec.vision_depth, embed_dim=spec.vision_hidden, hidden_size=spec.text_hidden,
                      mlp_ratio=max(1, spec.vision_intermediate // spec.vision_hidden), num_heads=spec.vision_heads,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
        return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **vision_ids)
    moe = family.endswith("_moe")
    vision = dict(depth=spec.vision_depth, hidden_size=spec.vision_hidden, intermediate_size=spec.vision_intermediate,
                  num_heads=spec.vision_heads, out_hidden_size=spec.text_hidden, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, num_position_embeddings=64)
    text["head_dim"] = head_dim
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=max(16, spec.text_intermediate // 4))
    if family.startswith("qwen3_vl"):
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": spec.rope_theta,
                                   "mrope_section": _mrope(head_dim), "mrope_interleaved": True}
        vision["deepstack_visual_indexes"] = [spec.vision_depth - 1]
        cls = Qwen3VLMoeConfig if moe else Qwen3VLConfig
        return cls(text_config=text, vision_config=vision, tie_word_embeddings=True, **vision_ids)
    # Qwen3.5: Gated DeltaNet (linear attention) layers with a full-attention layer every fourth
    # (the last one always full, so even a 2-layer model has both kinds); rotary on a quarter of the head
    rotary = max(4, int(head_dim * 0.25))
    layers = ["full_attention" if (i + 1) % 4 == 0 or i == spec.text_layers - 1 else "linear_attention"
              for i in range(spec.text_layers)]
    text.update(layer_types=layers, linear_key_head_dim=head_dim, linear_value_head_dim=head_dim,
                linear_num_key_heads=spec.text_kv_heads, linear_num_value_heads=spec.text_heads,
                rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta, "mrope_interleaved": True,
                                 "mrope_section": _mrope(rotary), "partial_rotary_factor": rotary / head_dim})
    if moe:
        text["shared_expert_intermediate_size"] = text["moe_intermediate_size"]
    cls = Qwen3_5MoeConfig if moe else Qwen3_5Config
    return cls(text_config=text, vision_config=vision, tie_word_embeddings=True, **vision_ids)


def build_family_processor(family: str, tokenizer, spec: TinyModelSpec = TinyModelSpec()):
    """That family's own stock processor class (image + video processor) with a small pixel budget."""
    from transformers import Qwen2VLProcessor, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    if family == "qwen2_5_vl":
        return build_processor(tokenizer, spec)
    size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}
    if family == "qwen2_vl":
        return Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(size=size), tokenizer=tokenizer,
                                video_processor=Qwen2VLVideoProcessor(size=size), chat_template=QWEN_VL_CHAT_TEMPLATE)
    # Qwen3-VL and Qwen3.5 share Qwen3VLProcessor: patch 16 and mean/std 0.5 (as their checkpoints ship)
    norm = dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    template = QWEN35_CHAT_TEMPLATE if family.startswith("qwen3_5") else QWEN_VL_CHAT_TEMPLATE
    return Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(size=size, patch_size=16, **norm),
                            tokenizer=tokenizer, chat_template=template,
                            video_processor=Qwen3VLVideoProcessor(size=size, patch_size=16, **norm))


def build_family_model(family: str, out_dir: Path, spec: TinyModelSpec = TinyModelSpec(),
                       corpus: Iterable[str] = (), seed: int = 0, init_std: float | None = None) -> Path:
    """Write a random-init model folder of `family` (safetensors, tokenizer, processor) to `out_dir`.

    `init_std` redraws every weight matrix from N(0, init_std): with the default small init a
    tiny model writes the same token over and over, a larger one writes varied text (tests of
    batching need outputs that differ).
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    if family == "qwen2_5_vl" and init_std is None:
        return build_random_model(out_dir, spec, corpus, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(corpus, spec.vocab_size, spec.number_tokens, spec.phrase_merges)
    if family.startswith("qwen3_5"):
        tokenizer.chat_template = QWEN35_CHAT_TEMPLATE
    processor = build_family_processor(family, tokenizer, spec)
    model = AutoModelForImageTextToText.from_config(build_family_config(family, tokenizer, spec))
    if init_std is not None:
        with torch.no_grad():
            for weight in model.parameters():
                if weight.dim() >= 2:
                    weight.normal_(0.0, init_std)
    end, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(eos_token_id=[end, pad], pad_token_id=pad, do_sample=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


# A model for trying the app end to end in seconds: ~1 M parameters, 64-192 image tokens.
CLI_SPEC = TinyModelSpec(text_hidden=128, text_layers=4, text_heads=4, text_kv_heads=2, text_intermediate=256,
                         vision_hidden=64, vision_depth=2, vision_heads=2, vision_intermediate=128, vocab_size=1024,
                         min_pixels=56 * 56, max_pixels=224 * 224)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training.bundled_model.tiny_model --family F --out DIR`: a random-init model folder of family F."""
    parser = argparse.ArgumentParser(prog="python -m training.bundled_model.tiny_model",
                                     description="Write a random-init model folder of one Qwen vision-language "
                                                 "family (its own processor class, this project's tokenizer), "
                                                 "built from a config with no download. It answers nonsense: "
                                                 "it is for trying and testing the app with that family.")
    parser.add_argument("--family", required=True, choices=FAMILY_TYPES)
    parser.add_argument("--out", required=True, type=Path, help="folder to write (must be empty or new)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        print(f"error: {args.out} exists and is not an empty folder", file=sys.stderr)
        return 2
    try:
        build_family_model(args.family, args.out, CLI_SPEC, seed=args.seed)
    except OSError as err:
        print(f"error: can't write {args.out}: {err}", file=sys.stderr)
        return 2
    print(f"wrote a random-init {args.family} model to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
