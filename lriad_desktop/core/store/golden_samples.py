"""The review store's golden samples: good images of an object that the inspector chose as references, and
the one query for every good image of an object (golden samples first, then images judged normal).

Golden samples are filed by object (`core.inspection.prompting.object_key`, so "metal_nut" and "Metal nut" are one),
oldest first: the first K are the references an image of that object is inspected beside.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from lriad_desktop.core.inspection.prompting import object_key
from lriad_desktop.core.store.review import current_reviewer
from lriad_desktop.core.store.database import StoreConnection, StoreError, now_iso


@dataclass(frozen=True)
class GoldenSample:
    """One image chosen as a good reference for an object."""

    id: int
    image_id: int
    path: str
    object_name: str
    added_by: str
    added_at: str


@dataclass(frozen=True)
class GoodImage:
    """A good image of an object: a golden sample, or an image whose current review says normal."""

    image_id: int
    path: str
    golden: bool


_GOLDEN = ("SELECT g.id, g.image_id, i.path, g.object_name, g.added_by, g.added_at FROM golden_samples g "
           "JOIN images i ON i.id = g.image_id")


def _golden_row(row: sqlite3.Row) -> GoldenSample:
    return GoldenSample(row["id"], row["image_id"], row["path"], row["object_name"], row["added_by"], row["added_at"])


class ReferenceTables(StoreConnection):
    """The `golden_samples` table (a part of `ReviewStore`)."""

    def add_golden_sample(self, image_id: int, object_name: str, added_by: str | None = None) -> GoldenSample:
        """File an image as a golden sample of `object_name` (written at once; a second time changes nothing)."""
        key = object_key(object_name)
        known = self._db.execute(_GOLDEN + " WHERE g.object_key = ? AND g.image_id = ?", (key, image_id)).fetchone()
        if known is not None:
            return _golden_row(known)
        if self._db.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
            raise StoreError(f"No image {image_id} in the review store")
        who = added_by or current_reviewer()
        cur = self._write("INSERT INTO golden_samples (image_id, object_name, object_key, added_by, added_at) "
                          "VALUES (?, ?, ?, ?, ?)", (image_id, object_name.strip(), key, who, now_iso()))
        row = self._db.execute(_GOLDEN + " WHERE g.id = ?", (cur.lastrowid,)).fetchone()
        return _golden_row(row)

    def remove_golden_sample(self, sample_id: int) -> None:
        """Stop using one golden sample (the image and its reviews stay)."""
        self._write("DELETE FROM golden_samples WHERE id = ?", (sample_id,))

    def golden_samples(self, object_name: str | None = None) -> list[GoldenSample]:
        """The golden samples of an object, oldest first (every object's when `object_name` is None)."""
        if object_name is None:
            rows = self._db.execute(_GOLDEN + " ORDER BY g.object_key, g.id")
        else:
            rows = self._db.execute(_GOLDEN + " WHERE g.object_key = ? ORDER BY g.id", (object_key(object_name),))
        return [_golden_row(r) for r in rows]

    def golden_objects(self, image_id: int) -> list[str]:
        """The objects an image is a golden sample of."""
        rows = self._db.execute("SELECT object_name FROM golden_samples WHERE image_id = ? ORDER BY id", (image_id,))
        return [r["object_name"] for r in rows]

    def good_images(self, object_name: str) -> list[GoodImage]:
        """Every good image of an object: its golden samples (oldest first), then the images whose current
        review says normal and whose recorded object is this one (oldest first), each image once."""
        key = object_key(object_name)
        found = [GoodImage(g.image_id, g.path, True) for g in self.golden_samples(object_name)]
        seen = {g.image_id for g in found}
        rows = self._db.execute(
            "SELECT i.id, i.path, i.object_name FROM images i JOIN reviews r ON r.image_id = i.id "
            "WHERE r.id IN (SELECT max(id) FROM reviews GROUP BY image_id) AND r.verdict = 'normal' ORDER BY i.id")
        for row in rows:
            if row["id"] not in seen and object_key(row["object_name"]) == key:
                seen.add(row["id"])
                found.append(GoodImage(row["id"], row["path"], False))
        return found
