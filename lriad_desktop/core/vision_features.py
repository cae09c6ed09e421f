"""Per-cell image features from a model folder's own vision tower, for the anomaly map.

The tower is the loaded Qwen-VL model's `model.visual`: either its merged output tokens (one per
image token of the language model, `get_image_features`) or the per-patch hidden states of one of
its blocks (a grid twice as fine along each axis, un-permuted from Qwen2.5-VL's window order).
torch and transformers are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from lriad_desktop.core.coordinates import ModelGeometry, model_input_size, processor_size
from lriad_desktop.core.model_files import model_load_errors

MERGED = "merged"  # the tower's merged output tokens: one feature per image token
_CHUNK = 1 << 20


class FeatureError(ValueError):
    """The model's vision tower can't give features (a clear sentence, shown as is)."""


def parse_feature(feature: str) -> int | None:
    """`"merged"` → None; `"block:K"` → K (the block whose per-patch hidden states are used)."""
    if feature == MERGED:
        return None
    head, _, index = feature.partition(":")
    if head == "block" and index.isdigit():
        return int(index)
    raise FeatureError(f"unknown feature {feature!r}: use {MERGED!r} or 'block:K'")


def _file_digest(path: Path) -> str:
    """Name, size, modification time and the first and last MiB of a file: cheap on a model of gigabytes,
    and it changes when new weights are saved into the folder."""
    stat = path.stat()
    h = hashlib.sha256(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as f:
        h.update(f.read(_CHUNK))
        if stat.st_size > 2 * _CHUNK:
            f.seek(stat.st_size - _CHUNK)
            h.update(f.read(_CHUNK))
    return h.hexdigest()[:16]


def model_fingerprint(model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None) -> str:
    """A short digest of a model folder (config and weights) and its adapter: a bank built with another
    model, or with the same folder after new weights were saved into it, no longer matches."""
    h = hashlib.sha256()
    for folder in (Path(model_dir), Path(adapter_dir) if adapter_dir else None):
        if folder is None:
            continue
        for name in ("config.json", "adapter_config.json"):
            if (folder / name).is_file():
                h.update((folder / name).read_bytes())
        for weights in sorted(folder.glob("*.safetensors")):
            h.update(_file_digest(weights).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class CellFeatures:
    """One image's features on its cell grid: `values` is a (rows * cols, dim) float32 tensor, row-major."""

    values: Any  # torch.Tensor
    rows: int
    cols: int
    input_size: tuple[int, int]  # (width, height) of the model input the grid covers
    image_size: tuple[int, int]  # (width, height) of the original image

    @property
    def positions(self) -> Any:
        """(rows * cols, 2) float32 tensor: each cell's centre as (row, col) fractions of the image, 0-1."""
        import torch

        r = (torch.arange(self.rows, dtype=torch.float32) + 0.5) / self.rows
        c = (torch.arange(self.cols, dtype=torch.float32) + 0.5) / self.cols
        return torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=-1).reshape(-1, 2)


class VisionTower:
    """A model folder's vision tower and image processor, turning images into `CellFeatures`.

    Build one with `VisionTower.load(folder)` (loads the model on the CPU or `device`), or hand it the
    parts of an already loaded model (`VisionTower(model, processor, geometry, ...)`).
    """

    def __init__(self, model: Any, processor: Any, geometry: ModelGeometry, model_version: str,
                 fingerprint: str, device: str = "cpu") -> None:
        inner = getattr(model, "model", model)
        self.visual = getattr(inner, "visual", None)
        if self.visual is None:
            raise FeatureError(f"{model_version}: the model has no vision tower (`model.visual`); the anomaly map "
                               f"needs a Qwen-VL model folder")
        self.image_processor = getattr(processor, "image_processor", processor)
        self.image_processor.size = processor_size(geometry)
        self.geometry = geometry
        self.model_version = model_version
        self.fingerprint = fingerprint
        self.device = device

    @classmethod
    def load(cls, model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None,
             device: str = "cpu") -> "VisionTower":
        """Load a model folder (validated as the engine does) and keep its tower; raises `ModelFolderError`."""
        from lriad_desktop.core.engine import Inspector

        inspector = Inspector(model_dir, adapter_dir, device=device)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        dtype = torch.float32 if device == "cpu" else torch.bfloat16  # a CPU has no fast bf16 matmul
        path = inspector.info.path
        common = dict(local_files_only=True, trust_remote_code=False)
        with model_load_errors(f"Model in {path}"):
            processor = AutoProcessor.from_pretrained(path, **common)
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, use_safetensors=True, **common)
        if inspector.adapter_dir is not None:
            from peft import PeftModel

            with model_load_errors(f"Adapter {inspector.adapter_dir}"):
                model = PeftModel.from_pretrained(model, inspector.adapter_dir, is_trainable=False)
                model = model.merge_and_unload()
        model.to(device).eval()
        return cls(model, processor, inspector.geometry, inspector.model_version,
                   model_fingerprint(path, inspector.adapter_dir), device)

    @property
    def depth(self) -> int:
        """How many blocks the tower has."""
        return len(self.visual.blocks)

    @property
    def default_feature(self) -> str:
        """A middle block's per-patch features: on the bundled model they separate defective parts better
        than the merged tokens, which full attention has mixed over the whole image (see the README)."""
        return f"block:{(self.depth - 1) // 2}"

    def features(self, images: Sequence[Image.Image], feature: str | None = None) -> list[CellFeatures]:
        """Cell features of RGB images (one tower pass for the batch); `feature` None: `default_feature`."""
        import torch

        block = parse_feature(feature or self.default_feature)
        if block is not None and not 0 <= block < self.depth:
            raise FeatureError(f"block {block} is outside the tower's {self.depth} blocks (0-{self.depth - 1})")
        if not images:
            return []
        batch = self.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        pixels = batch["pixel_values"].to(self.device, self.visual.dtype)
        grid = batch["image_grid_thw"].to(self.device)
        captured: list[Any] = []
        hook = None
        if block is not None:
            hook = self.visual.blocks[block].register_forward_hook(
                lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out))
        try:
            with torch.inference_mode():
                out = self.visual(pixels, grid_thw=grid)
        finally:
            if hook is not None:
                hook.remove()
        merge = int(self.visual.spatial_merge_size)
        if block is None:
            flat = out.pooler_output
        else:
            flat = self._in_patch_order(captured[-1], grid)
        result, start = [], 0
        for image, (t, gh, gw) in zip(images, grid.tolist()):
            rows, cols = (gh // merge, gw // merge) if block is None else (gh, gw)
            n = t * rows * cols
            values = flat[start:start + n].float()
            start += n
            if block is not None:  # patches come merge-group by merge-group: (r, c, dr, dc) → (r dr, c dc)
                values = values.reshape(rows // merge, cols // merge, merge, merge, -1).permute(0, 2, 1, 3, 4)
                values = values.reshape(rows * cols, -1)
            result.append(CellFeatures(values.cpu(), rows, cols, model_input_size(image.size, self.geometry),
                                       image.size))
        return result

    def _in_patch_order(self, hidden: Any, grid: Any) -> Any:
        """Block hidden states back in the processor's patch order (Qwen2.5-VL runs its blocks in window order)."""
        import torch

        if not hasattr(self.visual, "window_size") or not hasattr(self.visual, "permute_input_for_window_attn"):
            return hidden
        from transformers.vision_utils import get_vision_window_index

        window_index, _ = get_vision_window_index(grid, spatial_merge_size=self.visual.spatial_merge_size,
                                                  window_size=self.visual.window_size,
                                                  patch_size=self.visual.patch_size)
        unit = int(self.visual.spatial_merge_size) ** 2
        seq = hidden.shape[0]
        grouped = hidden.reshape(seq // unit, unit, -1)
        return grouped[torch.argsort(window_index.to(hidden.device))].reshape(seq, -1)
