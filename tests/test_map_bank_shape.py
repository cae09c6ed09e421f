"""A bank file can carry this model's identity and still hold features of another shape (copied from another
build, or written by hand): the map then says so in one sentence and the image is inspected without a map,
instead of a torch error that left the GUI's inspection unfinished; a bank whose tensors are malformed is
refused on load and built again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lriad_desktop.core.anomaly_map.patch_map import AnomalyMapError, MemoryBank
from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.anomaly_map.banks import BANK_FOLDER, MapBanks, tower_of
from lriad_desktop.core.anomaly_map.stage import MapStage
from training.synthetic_data.samples import generate_line_sample

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models" / "lriad-tiny"


@pytest.fixture(scope="module")
def bundled() -> Inspector:
    return Inspector(BUNDLED, device="cpu", max_new_tokens=48).load()


def _fabric(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        generate_line_sample(np.random.default_rng([11, i]), "fabric").image.save(folder / f"{i:02d}.png")
        paths.append(str(folder / f"{i:02d}.png"))
    return paths


def _rewrite(path: Path, reshape) -> None:
    """The bank file with its metadata (identity included) kept and its tensors changed by `reshape`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    save_file(reshape(tensors), str(path), metadata=meta)


def test_a_bank_of_this_models_name_with_other_features_is_one_notice_not_an_error(bundled, tmp_path):
    goods = _fabric(tmp_path / "good", 4)
    banks = MapBanks(tmp_path / BANK_FOLDER)
    bank = banks.build(tower_of(bundled), "fabric", goods)
    path = banks.bank_path("fabric", bank.identity)
    wide = bank.features.shape[1]

    def narrower(t):
        return {**t, "features": t["features"][:, : wide // 2].contiguous()}

    _rewrite(path, narrower)
    stage = MapStage(MapBanks(tmp_path / BANK_FOLDER), feature="tower")  # a new session: the bank from the file
    maps = stage.run(bundled, [(goods[0], "fabric")], {"fabric": goods})
    assert goods[0] not in maps.summaries and maps.built == []
    assert len(maps.notices) == 1
    assert f"holds features {wide // 2} wide" in maps.notices[0] and f"are {wide} wide" in maps.notices[0]
    assert maps.notices[0].endswith("rebuild it from the good images")


def test_a_bank_with_malformed_tensors_is_refused_on_load_and_built_again(bundled, tmp_path):
    goods = _fabric(tmp_path / "good", 3)
    banks = MapBanks(tmp_path / BANK_FOLDER)
    bank = banks.build(tower_of(bundled), "fabric", goods)
    path = banks.bank_path("fabric", bank.identity)
    _rewrite(path, lambda t: {**t, "features": t["features"].reshape(-1)})  # one dimension
    with pytest.raises(AnomalyMapError, match=r"features of shape \(\d+,\)"):
        MemoryBank.from_file(path, bank.identity)
    maps = MapStage(MapBanks(tmp_path / BANK_FOLDER), feature="tower").run(bundled, [(goods[0], "fabric")], {"fabric": goods})
    assert maps.built == ["fabric"] and goods[0] in maps.summaries and maps.notices == []
