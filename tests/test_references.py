"""Golden samples beside the query: multi-image and side-by-side prompts through the real processor, boxes
mapped back to the query, references recorded on findings, a deleted reference, and a real model server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry, ReferenceMode, read_model_geometry
from lriad_desktop.core.backends.engine import Inspector, ModelFolderError, finding_from_view, validate_model_folder
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.backends.pipeline import InspectionRequest, inspect_requests
from lriad_desktop.core.inspection.prompting import SYSTEM_PROMPT, build_messages
from lriad_desktop.core.inspection.references import ReferenceImage, prompt_images
from lriad_desktop.core.inspection.side_by_side import HALF_SIZE
from training.synthetic_data.samples import generate_sample

SIDE = ReferenceMode.SIDE_BY_SIDE


def _pair(seed: int = 1, size=(150, 120)):
    s = generate_sample(np.random.default_rng([5, seed]), defect=True, size=size, reference=True)
    return s.image, s.reference


@pytest.fixture(scope="module")
def side_by_side_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model's folder declaring that it takes a golden sample side by side."""
    out = tmp_path_factory.mktemp("sbs") / "model"
    shutil.copytree(tiny_model_dir, out)
    (out / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels", "references": "side_by_side",
                                                "max_pixels": 2 * HALF_SIZE[0] * HALF_SIZE[1]}))
    return out


def _image_text(messages):
    return [(p["type"], p.get("text", "")) for p in messages[1]["content"]]


def test_prompt_with_references_says_which_image_is_which():
    plain = build_messages("metal_nut")
    assert plain[0]["content"][0]["text"] == SYSTEM_PROMPT and [p["type"] for p in plain[1]["content"]] == ["image", "text"]
    two = build_messages("metal_nut", references=2)
    parts = _image_text(two)
    assert [t for t, _ in parts].count("image") == 3
    texts = [text for t, text in parts if t == "text"]
    assert texts[0].startswith("Reference image 1: a good metal nut") and "Reference image 2" in texts[2]
    assert any(t.startswith("Image to inspect: a metal nut") for t in texts)
    assert "last image" in texts[-1] and "2 reference images" in texts[-1]
    ref, query = Image.new("RGB", (8, 8)), Image.new("RGB", (9, 9))
    filled = build_messages("nut", query, [ref])
    images = [p["image"] for p in filled[1]["content"] if p["type"] == "image"]
    assert images[0] is ref and images[1] is query


def test_multi_image_prompt_through_the_real_processor(tiny_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir, local_files_only=True)
    query, ref = _pair(size=(150, 120))
    other = ref.resize((90, 200))
    view = prompt_images(query, [ReferenceImage("a.png", ref), ReferenceImage("b.png", other)], ReferenceMode.IMAGES)
    assert view.images[-1] is query and view.reference_paths == ("a.png", "b.png") and view.composite is None
    text = processor.apply_chat_template(view.messages("washer"), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=list(view.images), return_tensors="pt")
    grid = inputs["image_grid_thw"].tolist()
    assert len(grid) == 3  # two references and the query, each its own image
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size
    assert int((inputs["input_ids"] == pad).sum()) == sum(t * h * w for t, h, w in grid) // merge ** 2
    alone = processor(text=[processor.apply_chat_template(build_messages("washer"), add_generation_prompt=True,
                                                          tokenize=False)], images=[query], return_tensors="pt")
    assert alone["image_grid_thw"].tolist() == [grid[-1]]  # the query is seen exactly as without references


def test_side_by_side_prompt_is_one_composite_through_the_real_processor(side_by_side_dir):
    from transformers import AutoProcessor

    from lriad_desktop.core.inspection.coordinates import processor_size

    geometry = read_model_geometry(side_by_side_dir)
    assert geometry.references is SIDE
    processor = AutoProcessor.from_pretrained(side_by_side_dir, local_files_only=True)
    processor.image_processor.size = processor_size(geometry)
    query, ref = _pair(size=(300, 170))
    view = prompt_images(query, [ReferenceImage("good.png", ref), ReferenceImage("more.png", ref)], SIDE)
    assert len(view.images) == 1 and view.reference_paths == ("good.png",)  # a composite holds one golden sample
    assert view.answer_size == (2 * HALF_SIZE[0], HALF_SIZE[1])
    assert view.messages("washer") == build_messages("washer")  # the single-image prompt it was trained on
    text = processor.apply_chat_template(view.messages("washer"), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=list(view.images), return_tensors="pt")
    patch = processor.image_processor.patch_size
    assert inputs["image_grid_thw"].tolist() == [[1, HALF_SIZE[1] // patch, 2 * HALF_SIZE[0] // patch]]
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == pad).sum()) == (2 * HALF_SIZE[0] // 28) * (HALF_SIZE[1] // 28)


def test_side_by_side_boxes_map_back_from_the_right_half_in_query_pixels():
    geometry = ModelGeometry(max_pixels=2 * HALF_SIZE[0] * HALF_SIZE[1], references=SIDE)
    query, ref = Image.new("RGB", (112, 448)), Image.new("RGB", (60, 60))  # query: x scale 2, y scale 0.5
    view = prompt_images(query, [ReferenceImage("/good/ref.png", ref)], SIDE)
    text = ('<think>Step 1: a scratch on the right.</think><answer>{"anomaly": true, "defects": ['
            '{"label": "scratch", "bbox_2d": [264, 20, 284, 40]}, {"label": "stain", "bbox_2d": [10, 10, 30, 30]}]}'
            '</answer>')
    finding = finding_from_view(text, view, geometry, image_path="q.png")
    assert finding.image_size == (112, 448) and finding.references == ("/good/ref.png",)
    assert finding.defects[0] == Defect("scratch", Box(20.0, 40.0, 30.0, 80.0))
    assert finding.defects[1] == Defect("stain", None)  # on the golden sample: no box on the query
    images_geo = ModelGeometry(max_pixels=448 * 448)
    plain = finding_from_view(text, prompt_images(query, [ReferenceImage("r.png", ref)], ReferenceMode.IMAGES),
                              images_geo)
    assert plain.image_size == (112, 448) and plain.defects[1].box is not None  # separate images: query frame


def test_lriad_json_declares_the_reference_mode(tiny_model_dir, side_by_side_dir, tmp_path):
    assert read_model_geometry(tiny_model_dir).references is ReferenceMode.IMAGES  # the default for real models
    assert validate_model_folder(side_by_side_dir).geometry.references is SIDE
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "lriad.json").write_text(json.dumps({"references": "stacked"}))
    with pytest.raises(ModelFolderError, match="references 'stacked' is not one of images, side_by_side"):
        validate_model_folder(bad)


@pytest.mark.parametrize("mode", ["images", "side_by_side"])
def test_the_engine_inspects_beside_references_and_records_them(mode, inspector, side_by_side_dir):
    backend = inspector if mode == "images" else Inspector(side_by_side_dir, device="cpu", max_new_tokens=12).load()
    query, ref = _pair(size=(160, 130))
    alone, beside = backend.inspect_batch([query, query], ["washer", "washer"], ["q.png", "q.png"],
                                          [(), [ReferenceImage("good.png", ref)]])
    assert alone.references == () and beside.references == ("good.png",)
    for f in (alone, beside):
        assert f.image_size == (160, 130)
        assert all(0 <= v <= lim for d in f.defects if d.box for v, lim in zip(d.box.as_list(None), (160, 130) * 2))


def test_a_deleted_reference_is_a_notice_and_the_image_is_inspected_without_it(inspector, tmp_path):
    query, ref = _pair()
    qpath, gone, kept = tmp_path / "q.png", tmp_path / "gone.png", tmp_path / "kept.png"
    query.save(qpath)
    ref.save(gone)
    ref.save(kept)
    gone.unlink()
    results = list(inspect_requests(inspector, [
        InspectionRequest(str(qpath), "washer", references=(str(gone), str(kept))),
        InspectionRequest(str(qpath), "washer", references=(str(gone),)),
    ]))
    assert all(r.ok for r in results)
    assert results[0].finding.references == (str(kept),) and results[1].finding.references == ()
    for r in results:
        assert len(r.notices) == 1 and str(gone) in r.notices[0] and "inspected without it" in r.notices[0]


def test_a_backend_without_references_still_inspects_plain_requests(tiny_model_dir):
    class Older:  # a backend written before references existed
        def __init__(self, inner):
            self.inner = inner
            self.geometry, self.model_version, self.device, self.load_seconds, self.min_batch = (
                inner.geometry, "older", "cpu", 0.0, 1)

        def load(self):
            self.inner.load()
            return self

        def inspect_batch(self, images, object_names=None, image_paths=None):
            return self.inner.inspect_batch(images, object_names, image_paths)

        def close(self):
            pass

    backend = Older(Inspector(tiny_model_dir, device="cpu", max_new_tokens=8))
    results = list(inspect_requests(backend, [InspectionRequest("x.png", "washer", image=_pair()[0])]))
    assert results[0].ok and results[0].finding.references == ()


def test_finding_references_round_trip_in_json():
    f = Finding(Verdict.NORMAL, references=("/golden/a.png", "/golden/b.png"))
    back = Finding.from_json(f.to_json())
    assert back.references == f.references and json.loads(f.to_json())["references"] == ["/golden/a.png",
                                                                                        "/golden/b.png"]
    assert Finding.from_dict({"verdict": "normal"}).references == ()  # findings stored before references


def test_a_model_server_gets_each_reference_as_its_own_image(model_server, tmp_path):
    from lriad_desktop.core.backends.server import ServerBackend, ServerConfig

    samples = sorted((Path(__file__).resolve().parents[1] / "resources" / "samples").glob("*.jpg"))[:2]
    good = tmp_path / "good.png"
    Image.open(samples[1]).convert("RGB").save(good)
    requests = [InspectionRequest(str(samples[0]), "washer", references=(str(good),))]
    local = Inspector(bundled_model_dir(), device="cpu", grammar=False)  # `transformers serve` can't be held to it
    mine = list(inspect_requests(local, requests))[0].finding
    local.close()
    theirs = list(inspect_requests(ServerBackend(ServerConfig(model_server.url)), requests))[0]
    assert theirs.ok, theirs.error
    assert theirs.finding.references == mine.references == (str(good),)
    assert theirs.finding.verdict == mine.verdict and theirs.finding.labels == mine.labels
