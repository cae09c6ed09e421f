"""Per-cell image features from a model folder's own vision tower, for the anomaly map.

The tower is the loaded Qwen-VL model's `model.visual`: either its merged output tokens (one per
image token of the language model, `get_image_features`) or the per-patch hidden states of one of
its blocks (a grid twice as fine along each axis, un-permuted from Qwen2.5-VL's window order).
torch and transformers are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry, processor_size
from lriad_desktop.core.backends.model_files import model_load_errors

MERGED = "merged"  # the tower's merged output tokens: one feature per image token
DEFAULT_SIDE = 448  # the default feature's least input side: 32 x 32 patches
_CHUNK = 1 << 20


class _Enough(Exception):
    """Raised by a forward hook to end the tower pass once the last block needed has run."""


class FeatureError(ValueError):
    """The model's vision tower can't give features (a clear sentence, shown as is)."""


@dataclass(frozen=True)
class FeatureSpec:
    """Which tower features make a cell, parsed from a feature string such as ``"block:0+1@448~3"``:

    * ``merged`` (the merged output tokens) or ``block:K`` / ``block:K+L`` (per-patch hidden states of
      block K, or of several blocks concatenated);
    * ``@S``: run the tower on the image resized to about S x S pixels (aspect kept, multiples of 28)
      instead of the model's own input size: more, finer cells (the tower's rotary positions take any grid);
    * ``~N``: PatchCore's local aggregation, each cell the mean of its N x N neighbourhood.
    """

    blocks: tuple[int, ...] | None  # None: the merged tokens
    side: int | None = None  # None: the model's processor size
    aggregate: int = 1

    def __str__(self) -> str:
        text = MERGED if self.blocks is None else "block:" + "+".join(map(str, self.blocks))
        if self.side:
            text += f"@{self.side}"
        if self.aggregate > 1:
            text += f"~{self.aggregate}"
        return text


_FEATURE = re.compile(r"^(merged|block:\d+(?:\+\d+)*)(?:@(\d+))?(?:~(\d+))?$")


def parse_feature(feature: str) -> FeatureSpec:
    """A feature string (`FeatureSpec`) parsed; raises `FeatureError` with the grammar on a bad one."""
    match = _FEATURE.match(feature.strip()) if isinstance(feature, str) else None
    if match is None:
        raise FeatureError(f"unknown feature {feature!r}: use {MERGED!r} or 'block:K' (or 'block:K+L'), "
                           f"optionally '@SIDE' (input pixels) and '~N' (N x N aggregation), e.g. 'block:1@448~3'")
    head, side, aggregate = match.groups()
    blocks = None if head == MERGED else tuple(int(b) for b in head.partition(":")[2].split("+"))
    if side is not None and not 56 <= int(side) <= 4096:
        raise FeatureError(f"feature {feature!r}: the input side must be 56-4096 pixels")
    if aggregate is not None and (int(aggregate) < 1 or int(aggregate) % 2 == 0):
        raise FeatureError(f"feature {feature!r}: the aggregation must be odd (1, 3, 5)")
    return FeatureSpec(blocks, int(side) if side else None, int(aggregate or 1))


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


class FeatureSource(Protocol):
    """What the anomaly map takes features from: a model's `VisionTower` or the shipped CNN
    (`core.anomaly_map.cnn_features.CnnFeatures`); a bank records `model_version`, `fingerprint` and the feature."""

    model_version: str
    fingerprint: str

    @property
    def default_feature(self) -> str: ...

    def features(self, images: Sequence[Image.Image], feature: str | None = None) -> list["CellFeatures"]: ...


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
        from lriad_desktop.core.backends.engine import Inspector

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
        """The per-patch features of the two blocks around the middle, concatenated, on an input of at least
        `DEFAULT_SIDE` px: measured best on the line-like set (defects of parts are smaller than one patch at
        the bundled model's own 224 px; the merged tokens are mixed over the whole image). See the README."""
        middle = max(1, (self.depth - 1) // 2)
        native = int(self.geometry.max_pixels ** 0.5)
        side = f"@{DEFAULT_SIDE}" if native < DEFAULT_SIDE else ""
        return f"block:{middle - 1}+{middle}{side}"

    def features(self, images: Sequence[Image.Image], feature: str | None = None) -> list[CellFeatures]:
        """Cell features of RGB images (one tower pass for the batch); `feature` None: `default_feature`
        (the grammar: `FeatureSpec`)."""
        import torch

        spec = parse_feature(feature or self.default_feature)
        for block in spec.blocks or ():
            if not 0 <= block < self.depth:
                raise FeatureError(f"block {block} is outside the tower's {self.depth} blocks (0-{self.depth - 1})")
        if not images:
            return []
        extra = {}
        if spec.side:  # about side x side pixels whatever the image's size: the same grid for bank and query
            extra["size"] = {"shortest_edge": spec.side * spec.side, "longest_edge": spec.side * spec.side}
        batch = self.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt", **extra)
        pixels = batch["pixel_values"].to(self.device, self.visual.dtype)
        grid = batch["image_grid_thw"].to(self.device)
        captured: dict[int, Any] = {}
        last = max(spec.blocks) if spec.blocks else None

        def keep(block: int, out: Any) -> None:
            captured[block] = out[0] if isinstance(out, tuple) else out
            if block == last:
                raise _Enough  # the later blocks and the merger aren't needed: stop the pass here

        hooks = [self.visual.blocks[b].register_forward_hook(lambda _m, _i, out, b=b: keep(b, out))
                 for b in spec.blocks or ()]
        out = None
        try:
            with torch.inference_mode():
                out = self.visual(pixels, grid_thw=grid)
        except _Enough:
            pass
        finally:
            for hook in hooks:
                hook.remove()
        merge = int(self.visual.spatial_merge_size)
        patch = int(self.visual.patch_size)
        if spec.blocks is None:
            flat = out.pooler_output
        else:
            flat = torch.cat([self._in_patch_order(captured[b], grid) for b in spec.blocks], dim=-1)
        result, start = [], 0
        for image, (t, gh, gw) in zip(images, grid.tolist()):
            rows, cols = (gh // merge, gw // merge) if spec.blocks is None else (gh, gw)
            n = t * rows * cols
            values = flat[start:start + n].float()
            start += n
            if spec.blocks is not None:  # patches come merge-group by merge-group: (r, c, dr, dc) → (r dr, c dc)
                values = values.reshape(rows // merge, cols // merge, merge, merge, -1).permute(0, 2, 1, 3, 4)
                values = values.reshape(rows * cols, -1)
            if spec.aggregate > 1:
                values = _aggregate(values, rows, cols, spec.aggregate)
            result.append(CellFeatures(values.cpu(), rows, cols, (gw * patch, gh * patch), image.size))
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


def _aggregate(values: Any, rows: int, cols: int, size: int) -> Any:
    """Each cell's feature replaced by the mean over its `size` x `size` neighbourhood (edges: what exists)."""
    import torch.nn.functional as F

    grid = values.reshape(rows, cols, -1).permute(2, 0, 1)[None]
    pooled = F.avg_pool2d(grid, size, stride=1, padding=size // 2, count_include_pad=False)
    return pooled[0].permute(1, 2, 0).reshape(rows * cols, -1).contiguous()
