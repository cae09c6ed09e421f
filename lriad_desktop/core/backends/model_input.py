"""Images resized to the model's input before they leave the workstation, so a server's processor has
nothing left to resize and the box frame is exactly the one the workstation maps from.

With a local copy of the model's processor settings the resize is the image processor's own code
(transformers' Qwen-VL image processor: smart resize, then its own bicubic), so a server answers on the
very pixels an in-process model sees. Without one, PIL's bicubic at the smart-resize size is used, which
can move a box by a few pixels.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry, model_input_size, processor_size

log = logging.getLogger(__name__)
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def has_processor_settings(folder: str | Path) -> bool:
    """True when `folder` holds an image processor's settings (a model folder or a copy of its configs)."""
    path = Path(folder).expanduser()
    return path.is_dir() and any((path / name).is_file() for name in PROCESSOR_FILES)


class ModelInputResizer:
    """Resizes images to what the model takes in: the image processor's own resize when a folder with its
    settings is given (loaded on first use), else PIL bicubic at the smart-resize size."""

    def __init__(self, geometry: ModelGeometry, processor_dir: str | Path | None = None) -> None:
        self.geometry = geometry
        self.processor_dir = Path(processor_dir) if processor_dir else None
        self._processor: Any = None
        self._lock = threading.Lock()
        self._warned = False  # a resize that can't be used is said once, not once per image

    @property
    def exact(self) -> bool:
        """True when the image processor's own code does the resize."""
        return self.processor_dir is not None

    def _image_processor(self) -> Any:
        with self._lock:
            if self._processor is None:
                from transformers import AutoImageProcessor

                self._processor = AutoImageProcessor.from_pretrained(
                    self.processor_dir, local_files_only=True, trust_remote_code=False)
                self._processor.size = processor_size(self.geometry)  # the family's pixel budget, as in-process
            return self._processor

    def _warn_once(self, message: str, *args: Any) -> None:
        if not self._warned:
            self._warned = True
            log.warning(message + " (said once)", *args)

    def resize(self, image: Image.Image) -> Image.Image:
        """`image` (RGB) at the model's input size."""
        width, height = model_input_size(image.size, self.geometry)
        if self.processor_dir is not None:
            try:
                resized = _processor_resize(self._image_processor(), image)
                if resized.size == (width, height):
                    return resized
                self._warn_once("the image processor resized %s to %s, not %s; using PIL", image.size,
                                resized.size, (width, height))
            except (AttributeError, TypeError, ValueError, OSError) as err:  # another processor's API
                self._warn_once("the image processor's resize can't be used (%s); using PIL", err)
        if image.size == (width, height):
            return image
        return image.resize((width, height), Image.Resampling.BICUBIC)


def _processor_resize(processor: Any, image: Image.Image) -> Image.Image:
    """Run a Qwen-VL image processor's own resize step on one image (uint8 in, uint8 out)."""
    import numpy as np
    import torch

    array = np.array(image.convert("RGB"), dtype=np.uint8)
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    factor = int(processor.patch_size) * int(processor.merge_size)
    size = processor.size
    if isinstance(size, dict):  # transformers 5 reads the size's fields as attributes (`size.shortest_edge`)
        from transformers.image_utils import SizeDict

        size = SizeDict(**size)
    out = processor.resize(tensor, size=size, resample=processor.resample, factor=factor)
    return Image.fromarray(out[0].permute(1, 2, 0).to(torch.uint8).numpy(), "RGB")


def png_data_uri(image: Image.Image) -> str:
    """`image` as a lossless `data:image/png;base64,…` URI (JPEG would change the pixels the model sees)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
