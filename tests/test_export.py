"""Exports of the reviewed set, from a real store: CSV, JSON, COCO, YOLO, VLM-R1 JSONL."""

import csv
import json
import os

import pytest
from PIL import Image

from lriad_desktop.core.store import review as rv
from lriad_desktop.core.atomic_files import FileWriteError
from lriad_desktop.core.evaluation.export import EXPORTERS, ExportTarget, export_reviewed, reviewed_set
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.inspection.parsing import parse_completion
from lriad_desktop.core.inspection.prompting import user_prompt
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore

from full_disk import small_disk, tree_digest  # noqa: F401 - the fixture


@pytest.fixture
def store(tmp_path):
    """Three images: one accepted defect, one flag that redraws the box with a note, one flagged as normal."""
    folder = tmp_path / "metal_nut"
    folder.mkdir()
    s = ReviewStore.open(tmp_path / "r.sqlite3")
    made = []
    for name, colour in (("a.png", (10, 10, 10)), ("b.png", (60, 60, 60)), ("c.png", (120, 120, 120))):
        Image.new("RGB", (200, 100), colour).save(folder / name)
        made.append(s.add_image(folder / name, "metal_nut"))
    a, b, c = made
    fa = Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(10, 20, 50, 60)),), ("s1",), "raw", "m1",
                 image_size=(200, 100))
    ia = s.record_inspection(a.id, fa)
    s.save_review(a.id, rv.acceptance(fa, ia.id))
    fb = Finding(Verdict.NORMAL, (), ("s1",), "raw", "m1", image_size=(200, 100))
    ib = s.record_inspection(b.id, fb)
    s.save_review(b.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS,
                               (Defect("crack", Box(100, 0, 200, 50)), Defect("dent", None)), "hairline", ib.id))
    s.save_review(c.id, Review(ReviewKind.FLAG, Verdict.NORMAL))  # reviewed without an inspection
    s.add_image(_unreviewed(folder))
    yield s
    s.close()


def _unreviewed(folder):
    Image.new("RGB", (10, 10)).save(folder / "d.png")
    return folder / "d.png"


def test_reviewed_set_is_only_reviewed_images(store):
    assert [s.image.path.rsplit("/", 1)[1] for s in reviewed_set(store)] == ["a.png", "b.png", "c.png"]


def test_csv_and_json(store, tmp_path):
    res = export_reviewed(store, "csv", tmp_path / "out" / "r.csv")
    rows = list(csv.DictReader(open(res.path, encoding="utf-8")))
    # one row per reviewed defect (b has two), one for a part without defects; flat defect columns
    assert [(r["path"].rsplit("/", 1)[1], r["defect"], r["label"]) for r in rows] == [
        ("a.png", "1", "scratch"), ("b.png", "1", "crack"), ("b.png", "2", "deformation"), ("c.png", "", "")]  # dent: a deformation
    assert [r["review"] for r in rows] == ["accepted", "verdict flagged", "verdict flagged", "verdict flagged"]
    assert rows[1]["reviewed_model_verdict"] == "normal" and rows[1]["verdict"] == "defective"
    assert [rows[1][k] for k in ("x1", "y1", "x2", "y2")] == ["100", "0", "200", "50"]
    assert rows[2]["x1"] == "" and rows[2]["label"] == "deformation"  # a type without a box
    assert rows[1]["note"] == "hairline" and rows[0]["object_name"] == "metal_nut" and rows[0]["reviewer"]
    assert rows[3]["reviewed_model_version"] == "" and rows[3]["inspections"] == "0"
    assert not any("anomalous" in v for r in rows for v in r.values())  # one vocabulary: normal / defective
    assert res.images == 3 and res.boxes == 2
    doc = json.loads(export_reviewed(store, "json", tmp_path / "r.json").path.read_text())
    assert doc["box_frame"] == "original_pixels" and len(doc["images"]) == 3
    assert doc["images"][0]["finding"]["reasoning"] == ["s1"] and doc["images"][2]["finding"] is None
    assert doc["images"][0]["finding"]["verdict"] == "defective" and doc["images"][1]["review"]["verdict"] == "defective"
    assert doc["images"][1]["reviewed_against"]["model_version"] == "m1"
    assert "anomalous" not in json.dumps(doc)


def test_exports_keep_the_model_version_the_review_was_made_against_and_the_latest(store, tmp_path):
    """A flag made against m1, then a re-inspection by v1 that agrees: the flag stays attributed to m1."""
    b = next(s for s in reviewed_set(store) if s.image.path.endswith("b.png"))
    newer = Finding(Verdict.ANOMALOUS, (Defect("crack", Box(102, 2, 198, 52)), Defect("dent", Box(0, 0, 5, 5))),
                    ("s",), "raw", "lriad-tiny-v1", image_size=(200, 100))
    store.record_inspection(b.image.id, newer)
    a = next(s for s in reviewed_set(store) if s.image.path.endswith("a.png"))
    store.record_inspection(a.image.id, Finding(Verdict.NORMAL, (), ("s",), "raw", "lriad-tiny-v1",
                                                image_size=(200, 100)))
    rows = list(csv.DictReader(open(export_reviewed(store, "csv", tmp_path / "r.csv").path, encoding="utf-8")))
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in rows}
    rb, ra = by_name["b.png"], by_name["a.png"]
    assert (rb["reviewed_model_version"], rb["reviewed_model_verdict"]) == ("m1", "normal")
    assert (rb["latest_model_version"], rb["latest_model_verdict"], rb["latest_agrees"]) == (
        "lriad-tiny-v1", "defective", "yes")
    assert rb["inspections"] == "2" and rb["latest_model_labels"] == "crack; deformation"
    assert (ra["reviewed_model_version"], ra["latest_model_verdict"], ra["latest_agrees"]) == ("m1", "normal", "no")
    doc = json.loads(export_reviewed(store, "json", tmp_path / "r.json").path.read_text())
    item = next(i for i in doc["images"] if i["path"].endswith("b.png"))
    assert [h["model_version"] for h in item["inspections"]] == ["m1", "lriad-tiny-v1"]  # every inspection kept
    assert item["reviewed_against"]["verdict"] == "normal" and item["latest"]["verdict"] == "defective"
    assert item["latest_agrees"] is True and item["review"]["kind"] == "flag"


def test_labels_are_exported_in_one_spelling(tmp_path):
    folder = tmp_path / "pcb"
    folder.mkdir()
    with ReviewStore.open(tmp_path / "r.sqlite3") as s:
        for name, label in (("a.png", "missing_part"), ("b.png", "missing part"), ("c.png", "Missing-Part")):
            Image.new("RGB", (50, 50)).save(folder / name)
            img = s.add_image(folder / name)
            s.save_review(img.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect(label, Box(1, 1, 9, 9)),)))
        assert s.known_labels() == ["missing_part"]
        doc = json.loads(export_reviewed(s, "coco", tmp_path / "c.json").path.read_text())
    assert [c["name"] for c in doc["categories"]] == ["missing_part"] and len(doc["annotations"]) == 3


@pytest.mark.parametrize("fmt", ["csv", "json", "coco", "yolo", "vlm-r1"])
def test_lriad_export_on_the_command_line(store, tmp_path, capsys, fmt):
    from lriad_desktop.cli.commands import main

    out = tmp_path / "exported" / (fmt if fmt == "yolo" else f"out.{fmt}")
    assert main(["export", "--db", str(store.path), "--format", fmt, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("exported 3 images") and str(out) in said
    assert out.is_dir() if fmt == "yolo" else out.stat().st_size > 0
    if fmt == "csv":
        assert len(out.read_text().splitlines()) == 5  # header + 4 rows


def test_lriad_export_errors_are_one_line(store, tmp_path, capsys):
    from lriad_desktop.cli.commands import main

    assert main(["export", "--db", str(tmp_path / "none.sqlite3"), "--format", "csv", "--out", str(tmp_path / "x")]) == 2
    assert "no review store" in capsys.readouterr().err
    (tmp_path / "blocker").write_text("x")
    assert main(["export", "--db", str(store.path), "--format", "csv", "--out",
                 str(tmp_path / "blocker" / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: can't write") and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["export", "--db", str(store.path), "--format", "xml", "--out", str(tmp_path / "x")])


def test_coco(store, tmp_path):
    res = export_reviewed(store, "coco", tmp_path / "coco.json")
    doc = json.loads(res.path.read_text())
    assert [c["name"] for c in doc["categories"]] == ["crack", "scratch"]
    assert len(doc["images"]) == 3 and all(i["width"] == 200 and i["height"] == 100 for i in doc["images"])
    by_cat = {c["id"]: c["name"] for c in doc["categories"]}
    anns = {by_cat[a["category_id"]]: a["bbox"] for a in doc["annotations"]}
    assert anns == {"scratch": [10, 20, 40, 40], "crack": [100, 0, 100, 50]}


def test_yolo(store, tmp_path):
    res = export_reviewed(store, "yolo", tmp_path / "yolo")
    out = res.path
    assert (out / "classes.txt").read_text().split() == ["crack", "scratch"]
    labels = sorted((out / "labels").glob("*.txt"))
    assert len(labels) == 3 and len(list((out / "images").glob("*.png"))) == 3
    texts = {p.name.split("_", 1)[1]: p.read_text().split() for p in labels}
    assert texts["a.txt"] == ["1", "0.150000", "0.400000", "0.200000", "0.400000"]
    assert texts["b.txt"] == ["0", "0.750000", "0.250000", "0.500000", "0.500000"]
    assert texts["c.txt"] == []  # a normal image is a negative example
    assert "names:" in (out / "data.yaml").read_text()


def test_vlm_r1_jsonl(store, tmp_path):
    res = export_reviewed(store, "vlm-r1", tmp_path / "train.jsonl")
    lines = [json.loads(line) for line in res.path.read_text().splitlines()]
    assert len(lines) == 3
    b = lines[1]
    assert b["problem"] == user_prompt("metal_nut") and b["conversations"][0]["value"].startswith("<image>")
    assert b["conversations"][1]["value"] == b["solution"] and b["box_frame"] == "original_pixels"
    parsed = parse_completion(b["solution"])  # the solution is in the app's own answer grammar
    assert parsed.ok and parsed.anomaly and parsed.defects[0].box == (100, 0, 200, 50)
    assert b["labels_without_box"] == ["deformation"] and b["note"] == "hairline"
    assert parse_completion(lines[2]["solution"]).anomaly is False
    with pytest.raises(ValueError):
        export_reviewed(store, "xml", tmp_path / "x")
    assert set(EXPORTERS) == {"csv", "json", "coco", "yolo", "vlm-r1"}


def test_exporters_declare_their_target_and_a_new_one_is_offered_by_name(store, tmp_path, monkeypatch):
    from lriad_desktop.core.evaluation.export import ExportResult, ExportTarget, exporter

    assert [e.target for e in EXPORTERS.values()].count(ExportTarget.FOLDER) == 1
    assert EXPORTERS["yolo"].target is ExportTarget.FOLDER and EXPORTERS["coco"].default_name == "coco.json"
    assert all(e.menu_label.endswith("…") and e.title == e.menu_label[:-1] for e in EXPORTERS.values())
    monkeypatch.setattr("lriad_desktop.core.evaluation.export.EXPORTERS", dict(EXPORTERS))
    from lriad_desktop.core.evaluation import export
    @exporter("paths", "Image Paths…", "paths.txt")
    def export_paths(states, path):
        path.write_text("".join(s.image.path + "\n" for s in states))
        return ExportResult(path, len(states), 0)

    result = export.export_reviewed(store, "paths", tmp_path / "p.txt")
    assert result.images == 3 and len((tmp_path / "p.txt").read_text().splitlines()) == 3


# --- a failed export keeps the last good one (a real full disk) -------------------------------------


def _litter(folder):
    """Hidden temp files or staging folders an export left behind (the disk's own filler aside)."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".filler")


def test_every_export_on_a_full_disk_names_the_path_and_keeps_the_last_good_one_byte_for_byte(store, small_disk):
    for key, exporter in EXPORTERS.items():
        target = small_disk.root / exporter.default_name
        export_reviewed(store, key, target)  # the last good export
        good = tree_digest(target)
        small_disk.fill()
        with pytest.raises(FileWriteError) as failed:
            export_reviewed(store, key, target)
        assert str(failed.value) == f"Not enough disk space to write {target}", key
        assert tree_digest(target) == good, f"{key}: the previous export changed"
        fresh = small_disk.root / f"new-{exporter.default_name}"
        with pytest.raises(FileWriteError, match="Not enough disk space"):
            export_reviewed(store, key, fresh)
        assert not fresh.exists() and not _litter(small_disk.root), key
        small_disk.empty()
        export_reviewed(store, key, target)  # room again: the export goes through
        assert target.exists() and not _litter(small_disk.root)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_file_export_to_dev_full_is_one_line_naming_it(store):
    for key, exporter in EXPORTERS.items():
        if exporter.target is ExportTarget.FILE:
            with pytest.raises(FileWriteError) as failed:
                export_reviewed(store, key, "/dev/full")  # a device: written in place, every write is ENOSPC
            assert str(failed.value) == "Not enough disk space to write /dev/full", key


def test_a_yolo_export_replaces_its_own_entries_only(store, tmp_path):
    out = tmp_path / "chosen"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "stale.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # from an older export
    (out / "notes.md").write_text("the user's own file")
    export_reviewed(store, "yolo", out)
    assert (out / "notes.md").read_text() == "the user's own file"
    assert sorted(p.name.split("_", 1)[1] for p in (out / "labels").iterdir()) == ["a.txt", "b.txt", "c.txt"]
    assert not _litter(out)


def test_every_format_carries_the_anomaly_score(tmp_path):
    """The model's score per image in each format; empty / null for an image inspected without one."""
    s = ReviewStore.open(tmp_path / "s.sqlite3")
    ids = []
    for name, score in (("a.png", 0.875), ("b.png", None)):
        Image.new("RGB", (40, 30)).save(tmp_path / name)
        img = s.add_image(tmp_path / name, "washer")
        f = Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(1, 1, 9, 9), 0.5),), image_size=(40, 30),
                    anomaly_score=score, verdict_probability=score, score_source="verdict_token" if score else "")
        s.save_review(img.id, rv.acceptance(f, s.record_inspection(img.id, f).id))
        ids.append(img.id)
    rows = list(csv.DictReader(open(export_reviewed(s, "csv", tmp_path / "r.csv").path, encoding="utf-8")))
    assert [r["anomaly_score"] for r in rows] == ["0.875", ""]
    doc = json.loads(export_reviewed(s, "json", tmp_path / "r.json").path.read_text())
    assert [i["finding"]["anomaly_score"] for i in doc["images"]] == [0.875, None]
    assert doc["images"][0]["finding"]["defects"][0]["confidence"] == 0.5
    coco = json.loads(export_reviewed(s, "coco", tmp_path / "c.json").path.read_text())
    assert [i["anomaly_score"] for i in coco["images"]] == [0.875, None]
    yolo = export_reviewed(s, "yolo", tmp_path / "yolo").path
    assert (yolo / "scores.csv").read_text().splitlines() == [
        "file,image_id,anomaly_score", f"{ids[0]:06d}_a,{ids[0]},0.875", f"{ids[1]:06d}_b,{ids[1]},"]
    lines = export_reviewed(s, "vlm-r1", tmp_path / "t.jsonl").path.read_text().splitlines()
    assert [json.loads(x)["anomaly_score"] for x in lines] == [0.875, None]
    s.close()
