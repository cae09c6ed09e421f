"""The app's anomaly-map banks on the bundled model (real weights, a real store): built from an object's golden
samples and saved beside the store, out of date when the model's weights or the good images change, a clear
notice with too few good images, the fused score and its rule on the finding, the region hint in the prompt."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from lriad_desktop.core.anomaly_map.patch_map import DEFAULT_FUSION, MAP_MIDPOINT, FusionRule, fused_score
from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.inspection.finding import Finding, MapSummary, Verdict
from lriad_desktop.core.anomaly_map.banks import (BANK_FOLDER, MapBanks, choose_good_images, finding_with_map,
                                          GoodPaths, sources_digest, still_usable, tower_of)
from lriad_desktop.core.anomaly_map.patch_map import EmptyBank
from lriad_desktop.core.anomaly_map.features import TOWER
from lriad_desktop.core.anomaly_map.stage import MapStage, fusion_rules
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore
from training.synthetic_data.samples import generate_line_sample

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "resources" / "models" / "lriad-tiny"


@pytest.fixture(scope="module")
def bundled() -> Inspector:
    return Inspector(BUNDLED, device="cpu", max_new_tokens=48).load()


def _fabric(folder: Path, n: int, defect_at: int | None = None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        image = generate_line_sample(np.random.default_rng([11, i]), "fabric").image
        if defect_at is not None and i >= defect_at:
            image.paste((250, 30, 200), (image.width // 2, image.height // 4, image.width // 2 + 40,
                                         image.height // 4 + 40))
        image.save(folder / f"{i:02d}.png")
        paths.append(str(folder / f"{i:02d}.png"))
    return paths


def _golden(store: ReviewStore, paths: list[str], name: str = "woven fabric") -> None:
    for p in paths:
        image = store.add_image(p, name)
        store.save_review(image.id, Review(ReviewKind.ACCEPT, Verdict.NORMAL), "tester")
        store.add_golden_sample(image.id, name)


def _good(store: ReviewStore, name: str) -> list[str]:
    good = store.good_images(name)
    return choose_good_images([g.path for g in good], sum(g.golden for g in good))


def test_a_bank_is_built_from_golden_samples_and_saved_beside_the_store(bundled, tmp_path):
    store = ReviewStore.open(tmp_path / "store.sqlite3")
    goods = _fabric(tmp_path / "good", 4)
    _golden(store, goods)
    # the tower: its top-3 score lifts one small pasted square above the decision point; the CNN's top-300
    # tail mean finds the square (its box) but dilutes its score (docs/anomaly-map.md)
    stage = MapStage(MapBanks.beside(store.path), feature=TOWER)
    query = _fabric(tmp_path / "query", 1, defect_at=0)[0]
    maps = stage.run(bundled, [(query, "woven fabric")], {"woven fabric": _good(store, "woven fabric")})
    assert maps.built == ["woven fabric"] and maps.notices == []
    files = sorted(p.name for p in (tmp_path / BANK_FOLDER).iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")
    status = stage.banks.status("woven fabric", _identity(bundled), goods)
    assert status.usable and status.images == 4 and "4 good images · built just now" in status.text()
    summary = maps.summaries[query]
    assert summary.bank_images == 4 and summary.score > MAP_MIDPOINT and summary.boxes
    assert len(summary.cells) >= 8 and len(summary.cells[0]) == len(summary.cells[-1])
    again = MapStage(MapBanks.beside(store.path), feature=TOWER).run(bundled, [(query, "Woven_Fabric")],
                                                       {"woven fabric": goods})
    assert again.built == [] and again.summaries[query].score == pytest.approx(summary.score, abs=1e-4)
    store.close()


def _identity(inspector: Inspector):
    from lriad_desktop.core.anomaly_map.patch_map import BankIdentity

    return BankIdentity.of(tower_of(inspector))


def test_new_weights_make_the_bank_out_of_date_and_it_is_built_again(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    goods = _fabric(tmp_path / "good", 3)
    banks = MapBanks(tmp_path / BANK_FOLDER)
    first = Inspector(model, device="cpu").load()
    old = _identity(first)
    banks.build(tower_of(first), "fabric", goods)
    assert banks.current("fabric", old, goods) is not None
    weights = load_file(str(model / "model.safetensors"))
    name = next(k for k in weights if "visual" in k and k.endswith("weight"))
    weights[name] = weights[name] * 1.01  # "improved" weights saved into the same folder
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    second = Inspector(model, device="cpu").load()
    new = _identity(second)
    assert new.fingerprint != old.fingerprint
    assert banks.current("fabric", new, goods) is None
    assert banks.status("fabric", new, goods).stale == "built with another model"
    stage = MapStage(banks, feature=TOWER)
    maps = stage.run(second, [(goods[0], "fabric")], {"fabric": goods})
    assert maps.built == ["fabric"] and banks.status("fabric", new, goods).usable


def test_new_good_images_make_the_bank_out_of_date(bundled, tmp_path):
    goods = _fabric(tmp_path / "good", 4)
    banks = MapBanks(tmp_path / BANK_FOLDER)
    banks.build(tower_of(bundled), "fabric", goods[:3])
    identity = _identity(bundled)
    status = banks.status("fabric", identity, goods)
    assert status.stale == "1 new good image" and "out of date: 1 new good image" in status.text()
    assert banks.current("fabric", identity, goods) is None and banks.current("fabric", identity, goods[:3])
    assert sources_digest(goods) != sources_digest(goods[:3])


def test_a_few_new_normal_images_wait_but_a_new_golden_sample_or_a_lost_image_rebuilds(bundled, tmp_path):
    paths = [str(p) for p in _fabric(tmp_path / "good", 7)]
    banks = MapBanks(tmp_path / BANK_FOLDER)
    built = GoodPaths(paths[:5], golden=2)  # 2 golden samples, 3 images reviewed as normal
    banks.build(tower_of(bundled), "fabric", built)
    identity = _identity(bundled)
    two_more = GoodPaths(paths, golden=2)
    assert banks.current("fabric", identity, two_more) is not None  # an accept doesn't cost a rebuild
    assert banks.status("fabric", identity, two_more).stale == "2 new good images"
    assert banks.current("fabric", identity, GoodPaths(paths[:2] + paths[3:5], golden=2)) is None  # one went
    assert banks.current("fabric", identity, GoodPaths(paths[:6], golden=3)) is None  # a new golden sample
    assert banks.current("fabric", identity, paths[:6]) is None  # a plain list: every change counts
    assert still_usable(paths[:5], 2, GoodPaths(paths[:5], golden=2))


def test_zero_or_one_good_image_says_why_and_the_image_is_inspected_without_a_map(bundled, tmp_path):
    query = _fabric(tmp_path / "query", 1)[0]
    stage = MapStage(MapBanks(tmp_path / BANK_FOLDER))
    maps = stage.run(bundled, [(query, "fabric")], {})
    assert maps.summaries == {} and maps.notices == []  # expected: the bank row says it, not every inspection
    assert "needs at least two good images" in maps.skipped["fabric"] and "there is none" in maps.skipped["fabric"]
    one = stage.run(bundled, [(query, "fabric")], {"fabric": [query]})
    assert "there is only one" in one.skipped["fabric"]
    gone = [str(tmp_path / "gone1.png"), str(tmp_path / "gone2.png")]
    unreadable = stage.run(bundled, [(query, "fabric")], {"fabric": gone})
    assert "there is none (2 can't be read)" in unreadable.notices[0] and unreadable.summaries == {}
    assert stage.run(bundled, [(query, "fabric")], {"fabric": gone}).notices == []  # a notice is said once
    with pytest.raises(EmptyBank, match="needs at least two good images"):
        stage.banks.build(tower_of(bundled), "fabric", [])


def test_each_object_gets_the_fusion_rule_fitted_on_its_reviews(tmp_path):
    store = ReviewStore.open(tmp_path / "store.sqlite3")
    for i in range(10):
        anomalous = i % 2 == 1
        image = store.add_image(str(tmp_path / f"{i}.png"), "washer", sha256=f"{i:064d}")
        finding = finding_with_map(Finding(Verdict.ANOMALOUS if anomalous else Verdict.NORMAL, anomaly_score=0.5,
                                           verdict_probability=0.6 if anomalous else 0.45),
                                   MapSummary(5.0 + i if anomalous else 0.5 - i * 0.1, bank_images=8))
        store.record_inspection(image.id, finding)
        store.save_review(image.id, Review(ReviewKind.ACCEPT, finding.verdict), "tester")
    other = store.add_image(str(tmp_path / "nut.png"), "metal nut", sha256="f" * 64)
    store.save_review(other.id, Review(ReviewKind.ACCEPT, Verdict.NORMAL), "tester")
    rules = fusion_rules(store)
    assert set(rules) == {"washer"} and rules["washer"].fitted_on == 10
    assert "fitted on 10 reviewed images" in finding_with_map(Finding(Verdict.NORMAL), MapSummary(1.0, bank_images=8),
                                                              rules["washer"]).score_rule
    store.close()
    stage = MapStage(MapBanks(tmp_path / BANK_FOLDER), tmp_path / "store.sqlite3")
    assert stage.rules()["washer"] == rules["washer"]


def test_the_fused_score_and_its_rule_are_on_the_finding():
    model = Finding(Verdict.NORMAL, anomaly_score=0.3, verdict_probability=0.3, score_source="verdict_token")
    summary = MapSummary(6.0, cells=((0.0, 6.0),), bank_images=12)
    fused = finding_with_map(model, summary)
    assert fused.anomaly_score == pytest.approx(fused_score(0.3, 6.0)) and fused.anomaly_score > 0.5
    rule = DEFAULT_FUSION.describe()
    assert fused.score_rule == rule and fused.verdict_probability == 0.3 and fused.score_source == "verdict_token"
    back = Finding.from_json(fused.to_json())  # the store keeps it in the finding's JSON
    assert back.anomaly_map == summary and back.score_rule == rule and back.map_boxes == ()
    fitted = finding_with_map(model, summary, FusionRule(0.5, 0.5, 0.0, fitted_on=20))
    assert fitted.anomaly_score == pytest.approx(fused_score(0.3, 6.0, FusionRule(0.5, 0.5, 0.0, 20)))
    assert fitted.score_rule == "fusion: map 0.5 + model 0.5 (fitted on 20 reviewed images)"
    assert Finding.from_dict({**model.to_dict(), "anomaly_map": {"score": "x"}}).anomaly_map is None
    thin = finding_with_map(model, MapSummary(6.0, bank_images=3))  # too few good images to decide with
    assert thin.anomaly_score == 0.3 and thin.anomaly_map is not None
    assert thin.score_rule == "model alone: the map counts from 8 good images, it has 3"


def test_the_region_hint_goes_into_the_prompt_only_when_on(bundled, tmp_path):
    goods = _fabric(tmp_path / "good", 4)
    query = _fabric(tmp_path / "query", 1, defect_at=0)[0]
    stage = MapStage(MapBanks(tmp_path / BANK_FOLDER))
    on = stage.run(bundled, [(query, "fabric")], {"fabric": goods}, hints=True)
    hint = on.hint(query)
    assert hint.startswith("Compared with good images of this product, the image differs most in the ")
    from lriad_desktop.core.backends.pipeline import InspectionRequest, inspect_chunk

    inspect_chunk(bundled, [InspectionRequest(query, "fabric", hint=hint)])
    assert hint in bundled.last_prompts[0]
    off = stage.run(bundled, [(query, "fabric")], {"fabric": goods}, hints=False)
    assert off.hint(query) == "" and off.summaries[query].hint == ""
    inspect_chunk(bundled, [InspectionRequest(query, "fabric", hint=off.hint(query))])
    assert "differs most" not in bundled.last_prompts[0]


def test_a_server_backend_maps_with_its_local_copy_or_says_the_map_is_off(tmp_path):
    from lriad_desktop.core.backends.server import ServerBackend, ServerConfig

    query = _fabric(tmp_path / "query", 1)[0]
    goods = _fabric(tmp_path / "good", 3)
    stage = MapStage(MapBanks(tmp_path / BANK_FOLDER), feature=TOWER)
    remote = ServerBackend(ServerConfig(url="http://127.0.0.1:9", model="lriad-tiny"))  # nothing is sent
    maps = stage.run(remote, [(query, "fabric")], {"fabric": goods})
    assert maps.summaries == {} and maps.notices == []
    assert maps.skipped["fabric"].startswith("Anomaly map off: a model server gives no image features")
    assert "Local copy of the model" in maps.skipped["fabric"]
    local = ServerBackend(ServerConfig(url="http://127.0.0.1:9", processor_dir=str(BUNDLED)))
    assert stage.run(local, [(query, "fabric")], {"fabric": goods}).summaries[query].bank_images == 3
    shipped = MapStage(MapBanks(tmp_path / "cnn"))  # the default: ImageNet features need no model at all
    assert shipped.run(remote, [(query, "fabric")], {"fabric": goods}).summaries[query].bank_images == 3


def test_a_bank_of_the_tower_is_built_again_for_the_cnn_and_back(bundled, tmp_path):
    goods = _fabric(tmp_path / "good", 3)
    query = _fabric(tmp_path / "query", 1, defect_at=0)[0]
    banks = MapBanks(tmp_path / BANK_FOLDER)
    tower = MapStage(banks, feature=TOWER).run(bundled, [(query, "fabric")], {"fabric": goods})
    cnn = MapStage(banks).run(bundled, [(query, "fabric")], {"fabric": goods})
    assert tower.built == ["fabric"] and cnn.built == ["fabric"]  # another feature: another bank, never mixed
    assert len(cnn.summaries[query].cells) == 40 and len(tower.summaries[query].cells) != 40
    assert MapStage(banks, feature=TOWER).run(bundled, [(query, "fabric")], {"fabric": goods}).built == []
    assert len(list(banks.folder.glob("*.safetensors"))) == 2
