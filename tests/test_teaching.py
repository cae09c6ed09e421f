"""Teaching a product (Qt-free): the good images of a folder without its masks, recorded in a real store as the
object's good images (a normal review each, golden samples only when asked), a defective one left out; the map's
decision on the demo model (`core.anomaly_map.decision`) and the score in words (`core.anomaly_map.score_words`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lriad_desktop.core.inspection.images import iter_image_files
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, MapSummary, Verdict
from lriad_desktop.core.anomaly_map.banks import MIN_FUSED_BANK, finding_with_map
from lriad_desktop.core.anomaly_map.decision import MAP_RULE, decided, is_demo_model, map_led
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.anomaly_map.score_words import score_details, score_headline
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.core.anomaly_map.teaching import (TAUGHT_NOTE, TeachError, good_images_in, model_takes_references,
                                         references_wanted, teach_good_images)


def _image(path: Path, shade: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (shade, shade, shade)).save(path)
    return path


def test_a_dataset_folder_gives_its_good_images_without_the_masks(tmp_path):
    root = tmp_path / "ball_screw"
    good = [_image(root / "train" / "good" / f"{i}.png") for i in range(3)]
    _image(root / "ground_truth" / "pitting" / "0_mask.png")
    (root / "train" / "good" / "notes.txt").write_text("not an image")
    found = good_images_in([root])
    assert found == [str(p.resolve()) for p in good]
    assert good_images_in([root / "train" / "good", good[0]]) == found  # each once
    masks = root / "ground_truth"
    assert len(good_images_in([masks])) == 1  # a mask folder given on purpose is walked
    assert len(list(iter_image_files([root]))) == 3 and len(list(iter_image_files([root], skip_masks=True))) == 3


def test_teaching_records_normal_reviews_the_map_counts_and_leaves_a_defective_image_out(tmp_path):
    paths = [str(_image(tmp_path / "good" / f"{i}.png", 100 + i)) for i in range(4)]
    store = ReviewStore.open(tmp_path / "store.sqlite3")
    known = store.add_image(paths[3], "ball screw")
    store.save_review(known.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("pitting", Box(1, 1, 9, 9)),)),
                      "ann")
    seen = []
    taught = teach_good_images(store, "  Ball  screw ", paths, "bob", progress=lambda d, t: seen.append((d, t)))
    assert taught.object_name == "Ball screw"
    assert taught.good == tuple(str(Path(p).resolve()) for p in paths[:3])
    assert taught.already_defective == (paths[3],) and taught.golden == ()
    assert seen[-1] == (4, 4)
    good = store.good_images("ball_screw")  # the map's good set: one object key
    assert [g.path for g in good] == list(taught.good) and not any(g.golden for g in good)
    review = store.current_review(good[0].image_id)
    assert review.review.verdict is Verdict.NORMAL and review.review.note == TAUGHT_NOTE and review.reviewer == "bob"
    assert store.current_review(known.id).review.verdict is Verdict.ANOMALOUS  # never overruled
    assert store.golden_samples("ball screw") == []  # the model is not shown them
    assert "3 good images of “Ball screw” recorded" in taught.text() and "1 left out" in taught.text()
    again = teach_good_images(store, "ball screw", paths[:3], "bob")  # a second time writes no new review
    assert again.good == taught.good and len(store.review_history(good[0].image_id)) == 1
    store.close()


def test_golden_samples_only_as_many_as_asked_and_only_when_the_model_takes_references(tmp_path):
    paths = [str(_image(tmp_path / "good" / f"{i}.png", 90 + i)) for i in range(3)]
    store = ReviewStore.open(tmp_path / "store.sqlite3")
    assert references_wanted(store, "nut", 2) == 2
    taught = teach_good_images(store, "nut", paths, "bob", golden=2)
    assert len(taught.golden) == 2 and [g.path for g in store.golden_samples("nut")] == list(taught.golden)
    assert references_wanted(store, "nut", 2) == 0
    store.close()
    plain, takes = tmp_path / "plain", tmp_path / "takes"
    plain.mkdir()
    takes.mkdir()
    (plain / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels"}))
    (takes / "lriad.json").write_text(json.dumps({"references": "side_by_side"}))
    assert not model_takes_references(plain) and model_takes_references(takes)
    assert not model_takes_references(tmp_path / "missing") and not model_takes_references(None)
    (takes / "lriad.json").write_text("{broken")
    assert not model_takes_references(takes)


def test_bad_input_is_one_clear_message_and_writes_nothing(tmp_path):
    store = ReviewStore.open(tmp_path / "store.sqlite3")
    good = str(_image(tmp_path / "good" / "0.png"))
    with pytest.raises(TeachError, match="Name the product"):
        teach_good_images(store, "   ", [good], "bob")
    with pytest.raises(TeachError, match="No images to teach from"):
        teach_good_images(store, "nut", [], "bob")
    assert store.good_images("nut") == [] and store.lookup_paths([good]) == {}
    gone = str(tmp_path / "good" / "gone.png")
    taught = teach_good_images(store, "nut", [gone, good], "bob")
    assert taught.unreadable == (gone,) and len(taught.good) == 1
    store.close()


def _demo(verdict=Verdict.UNPARSED, map_score=7.5, bank=12, version="lriad-tiny") -> Finding:
    summary = MapSummary(map_score, (Box(10, 10, 40, 30),), (), bank)
    finding = Finding(verdict, (), (), "garbled", version, "a.png", (64, 48), "ball screw")
    return finding_with_map(finding, summary)


def test_the_map_decides_on_the_demo_model_and_the_fused_rule_on_a_real_one():
    assert is_demo_model("lriad-tiny") and is_demo_model("lriad-tiny+lriad-tiny-v2")
    assert not is_demo_model("Qwen2.5-VL-7B-Instruct") and not is_demo_model("x+lriad-tiny")
    led = decided(_demo())  # an unreadable demo answer, a map far from the good images
    assert map_led(_demo()) and led.verdict is Verdict.ANOMALOUS and led.score_rule == MAP_RULE
    assert led.defects == (Defect("", Box(10, 10, 40, 30)),) and led.anomaly_score > 0.98
    calm = decided(_demo(Verdict.ANOMALOUS, map_score=0.2))
    assert calm.verdict is Verdict.NORMAL and calm.defects == ()
    real = _demo(version="Qwen2.5-VL-7B-Instruct")
    assert not map_led(real) and decided(real).verdict is Verdict.UNPARSED  # as today
    thin = _demo(bank=MIN_FUSED_BANK - 1)
    assert not map_led(thin) and decided(thin).verdict is Verdict.UNPARSED


def test_the_score_headline_is_one_number_and_the_rest_is_detail():
    model = _demo()
    head = score_headline(model, decided(model), 0.5)
    assert head == "Anomaly score 0.99 · threshold 0.50"
    details = "\n".join(score_details(model))
    assert MAP_RULE in details and "7.5 spreads" in details and "1 region" in details and "12 good images" in details
    real = _demo(version="Qwen2.5-VL-7B-Instruct")
    assert score_headline(real, decided(real), 0.5).startswith("No anomaly score: the model's answer could not")
    assert "no probability" in "\n".join(score_details(real))
