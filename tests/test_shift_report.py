"""The shift report from a real review store: counts, thumbnails with boxes, one self-contained HTML file."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.review import Review, ReviewKind, acceptance
from lriad_desktop.core.line.shift_report import ReportError, gather_report, parse_since, render_html, write_report
from lriad_desktop.core.store.review_store import ReviewStore

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
NOW = datetime(2026, 3, 2, 14, 30).astimezone()  # clock times are read in local time


def test_when_a_period_starts():
    assert parse_since("8h", NOW) == NOW - timedelta(hours=8)
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert parse_since("06:00", NOW) == NOW.replace(hour=6, minute=0)
    assert parse_since("22:00", NOW) == (NOW - timedelta(days=1)).replace(hour=22, minute=0)  # last night's shift
    assert parse_since("today", NOW) == NOW.replace(hour=0, minute=0)
    assert parse_since("yesterday", NOW) == NOW.replace(hour=0, minute=0) - timedelta(days=1)
    assert parse_since("2026-03-01T06:00+00:00", NOW) == datetime(2026, 3, 1, 6, tzinfo=timezone.utc)
    with pytest.raises(ReportError, match="is not a time"):
        parse_since("last tuesday", NOW)


def _finding(path: Path, verdict: Verdict, defects=(), version="lriad-tiny") -> Finding:  # noqa: ANN001
    size = Image.open(path).size
    return Finding(verdict, tuple(defects), ("Looked.",), "", version, str(path), size, "washer")


@pytest.fixture()
def shift(tmp_path):
    """A store with a shift's inspections: a defective washer flagged with the inspector's own box, a
    defective metal plate accepted, two normal images (one accepted), one unreadable answer."""
    folder = tmp_path / "line"
    folder.mkdir()
    names = ["washer_scratch.jpg", "metal_hole.jpg", "bottle_good.jpg", "fabric_good.jpg", "pcb_missing_part.jpg"]
    for name in names:
        shutil.copy(SAMPLES / name, folder / name)
    store = ReviewStore.open(tmp_path / "reviews.sqlite3")
    ids = {}
    findings = {
        "washer_scratch.jpg": _finding(folder / "washer_scratch.jpg", Verdict.ANOMALOUS,
                                       [Defect("crack", Box(20, 30, 120, 90))]),
        "metal_hole.jpg": _finding(folder / "metal_hole.jpg", Verdict.ANOMALOUS, [Defect("hole", Box(50, 50, 90, 95))],
                                   version="lriad-tiny+line4-v2"),
        "bottle_good.jpg": _finding(folder / "bottle_good.jpg", Verdict.NORMAL),
        "fabric_good.jpg": _finding(folder / "fabric_good.jpg", Verdict.NORMAL),
        "pcb_missing_part.jpg": _finding(folder / "pcb_missing_part.jpg", Verdict.UNPARSED),
    }
    for name, finding in findings.items():
        image = store.add_image(folder / name, "washer")
        insp = store.record_inspection(image.id, finding)
        ids[name] = (image.id, insp.id)
    image_id, insp_id = ids["washer_scratch.jpg"]
    store.save_review(image_id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("scratch", Box(60, 60, 140, 80)),),
                                       "scratch, not a crack", insp_id), reviewer="dana")
    for name in ("metal_hole.jpg", "bottle_good.jpg"):
        image_id, insp_id = ids[name]
        store.save_review(image_id, acceptance(findings[name], insp_id), reviewer="sam")
    yield store, folder
    store.close()


def test_the_report_counts_the_shift(shift):
    store, folder = shift
    report = gather_report(store, datetime.now().astimezone() - timedelta(hours=1))
    assert len(report.images) == 5
    assert dict(report.model_verdicts) == {"anomalous": 2, "normal": 2, "unparsed": 1}
    assert dict(report.verdicts) == {"anomalous": 2, "normal": 2, "unparsed": 1}
    assert dict(report.defect_types) == {"scratch": 1, "hole": 1}  # the inspector's label where flagged
    assert dict(report.model_versions) == {"lriad-tiny": 4, "lriad-tiny+line4-v2": 1}
    assert dict(report.reviewers) == {"dana": 1, "sam": 2}
    assert dict(report.reviews) == {"flag": 1, "accept": 2, "none": 2}
    assert [Path(r.image.path).name for r in report.shown] == ["washer_scratch.jpg", "metal_hole.jpg"]
    assert report.as_dict()["images"] == 5
    # a period before or after holds nothing; a period that ends before it starts is one error
    later = datetime.now().astimezone() + timedelta(minutes=5)
    assert gather_report(store, later, later + timedelta(hours=1)).images == ()
    with pytest.raises(ReportError, match="before it starts"):
        gather_report(store, later, later - timedelta(hours=1))


def test_the_defect_table_counts_images_not_boxes(shift):
    """Issue 33 #19: three crack boxes on one image and one on another are 2 crack images, never 4 ("crack 33 with
    19 defective images")."""
    store, folder = shift
    boxes = [Defect("crack", Box(10 + 30 * i, 10, 30 + 30 * i, 30)) for i in range(3)]
    for name, defects in (("three_cracks.jpg", boxes), ("crack_and_hole.jpg", [boxes[0], Defect("hole", None)])):
        shutil.copy(SAMPLES / "washer_scratch.jpg", folder / name)
        image = store.add_image(folder / name, "washer")
        store.record_inspection(image.id, _finding(folder / name, Verdict.ANOMALOUS, defects))
    report = gather_report(store, datetime.now().astimezone() - timedelta(hours=1))
    assert dict(report.defect_types) == {"scratch": 1, "hole": 2, "crack": 2}
    assert report.verdicts["anomalous"] == 4 and max(report.defect_types.values()) <= report.verdicts["anomalous"]
    assert "<td>crack</td><td class=n>2</td>" in render_html(report)


def test_a_new_inspection_replaces_the_old_one_in_the_report(shift):
    """Also in the millisecond the report is made (the store's times are whole milliseconds)."""
    store, folder = shift
    image = store.add_image(folder / "fabric_good.jpg")
    store.record_inspection(image.id, _finding(folder / "fabric_good.jpg", Verdict.ANOMALOUS,
                                               [Defect("stain", Box(5, 5, 40, 40))]))
    report = gather_report(store, datetime.now().astimezone() - timedelta(hours=1))
    assert len(report.images) == 5 and report.model_verdicts["anomalous"] == 3


def test_the_html_is_one_self_contained_file_with_boxes(shift, tmp_path):
    store, folder = shift
    (folder / "metal_hole.jpg").unlink()  # moved away since: the report says so instead of failing
    report = gather_report(store, datetime.now().astimezone() - timedelta(hours=1))
    text = render_html(report, "Line 4 — early shift <A>")
    assert "Line 4 — early shift &lt;A&gt;" in text
    assert not re.search(r"""(src|href)=(?!["']?data:)""", text)  # nothing outside the file
    assert "image no longer at this path" in text and "scratch, not a crack" in text and "dana" in text
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)
    assert len(uris) == 1
    thumb = Image.open(io.BytesIO(base64.b64decode(uris[0]))).convert("RGB")
    assert max(thumb.size) <= 360
    r, g, b = np.asarray(thumb, dtype=int).transpose(2, 0, 1)
    reds = int(((r > 200) & (g < 110) & (b < 100)).sum())
    blues = int(((b > 200) & (r < 60) & (g > 90) & (g < 170)).sum())
    assert reds > 50 and blues > 50  # the model's box and the inspector's are drawn
    out = write_report(text, tmp_path / "reports" / "shift.html")
    assert out.read_text(encoding="utf-8") == text
    with pytest.raises(ReportError, match="Can't write the report"):
        write_report(text, out / "inside-a-file.html")


def _lriad(*args):
    return subprocess.run([sys.executable, "-m", "lriad_desktop", "report", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_lriad_report(shift, tmp_path):
    store, _folder = shift
    db = store.path
    res = _lriad("--since", "2h", "--db", db, "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["verdicts"] == {"anomalous": 2, "normal": 2, "unparsed": 1}
    res = _lriad("--since", "2h", "--db", db, "--out", tmp_path / "r.html", "--title", "Line 4")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{tmp_path / 'r.html'}: 5 images, 2 defective or flagged"
    assert "<h1>Line 4</h1>" in (tmp_path / "r.html").read_text(encoding="utf-8")
    res = _lriad("--since", "last tuesday", "--db", db)
    assert res.returncode == 2 and res.stderr.startswith("error: 'last tuesday' is not a time")
    assert "Traceback" not in res.stderr
