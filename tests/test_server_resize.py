"""`--server URL --model DIR` promises the image processor's own resize (the pixels an in-process model sees):
with transformers 5 it failed on every image ('dict' object has no attribute 'shortest_edge') and fell back to
PIL with one warning per image. The processor's resize is used, and a fallback would be said once."""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from lriad_desktop.core.inspection.coordinates import model_input_size, read_model_geometry
from lriad_desktop.core.backends.model_input import ModelInputResizer
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.backends.pipeline import InspectionRequest, inspect_requests
from lriad_desktop.core.backends.server import ServerBackend, ServerConfig
from scripted_server import ScriptedServer


def _noise(path, size, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").save(path)
    return path


def test_a_local_copy_gives_the_processors_own_resize_without_a_warning_per_image(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    images = [_noise(tmp_path / f"{i}.png", (333 + 40 * i, 250), i) for i in range(3)]
    with ScriptedServer("ok") as server:
        backend = ServerBackend(ServerConfig(server.url, processor_dir=str(bundled_model_dir()), retries=0))
        results = list(inspect_requests(backend, [InspectionRequest(str(p), "washer") for p in images]))
        backend.close()
    assert all(r.ok for r in results)
    assert "using PIL" not in caplog.text and "shortest_edge" not in caplog.text


def test_the_resize_is_the_processors_not_pils(tmp_path):
    from transformers import AutoImageProcessor

    folder = bundled_model_dir()
    geometry = read_model_geometry(folder)
    image = Image.open(_noise(tmp_path / "n.png", (333, 250), 7)).convert("RGB")
    resized = ModelInputResizer(geometry, folder).resize(image)
    size = model_input_size(image.size, geometry)
    assert resized.size == size
    pil = image.resize(size, Image.Resampling.BICUBIC)
    assert np.asarray(resized).tolist() != np.asarray(pil).tolist()  # not the fallback
    # the processor's own resize, called here as transformers documents it
    import torch
    from transformers.image_utils import SizeDict

    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).unsqueeze(0).contiguous()
    theirs = processor.resize(tensor, size=SizeDict(shortest_edge=geometry.min_pixels,
                                                    longest_edge=geometry.max_pixels),
                              resample=processor.resample, factor=processor.patch_size * processor.merge_size)
    assert np.asarray(resized).tolist() == theirs[0].permute(1, 2, 0).to(torch.uint8).numpy().tolist()
