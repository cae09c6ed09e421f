"""The review store's decision thresholds, one per object name: an image is called defective when its
anomaly score is at or above its object's threshold (`core.inspection.confidence`); an object without one uses 0.5."""

from __future__ import annotations

from lriad_desktop.core.inspection.confidence import DEFAULT_THRESHOLD, check_threshold
from lriad_desktop.core.store.database import StoreConnection, StoreError, now_iso


class ThresholdTables(StoreConnection):
    """The `object_thresholds` table (a part of `ReviewStore`)."""

    def set_threshold(self, object_name: str, threshold: float | None) -> None:
        """Remember the threshold for an object name; None forgets it (back to the default)."""
        name = object_name.strip()
        if not name:
            raise StoreError("A threshold belongs to an object: name the object first")
        if threshold is None:
            self._write("DELETE FROM object_thresholds WHERE object_name = ?", (name,))
            return
        try:
            value = check_threshold(threshold)
        except ValueError as err:
            raise StoreError(str(err)) from None
        self._write("INSERT INTO object_thresholds (object_name, threshold, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (object_name) DO UPDATE SET threshold = excluded.threshold, "
                    "updated_at = excluded.updated_at", (name, value, now_iso()))

    def thresholds(self) -> dict[str, float]:
        """Every object name with a threshold of its own."""
        return {r[0]: float(r[1]) for r in self._db.execute("SELECT object_name, threshold FROM object_thresholds")}

    def threshold_for(self, object_name: str | None) -> float:
        """The object's threshold, or the default 0.5."""
        row = self._db.execute("SELECT threshold FROM object_thresholds WHERE object_name = ?",
                               ((object_name or "").strip(),)).fetchone()
        return float(row[0]) if row else DEFAULT_THRESHOLD
