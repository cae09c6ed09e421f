"""The anomaly map beside each inspection: before the model answers, each image is compared with its object's
good images (a bank from `core.map_banks`, built or built again when out of date); the map's region hint can
close the prompt, and afterwards the map goes into the finding (`map_banks.finding_with_map`).

Runs where inspection runs (the app's model lane), on the weights the inspection backend has loaded.
A map that can't be made (too few good images, a server without a local copy, an unreadable image) is one
notice per object and reason, never an error of the inspection: the image is inspected without a map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from lriad_desktop.core.anomaly_map import AnomalyMapError, FusionRule, map_images
from lriad_desktop.core.atomic_files import FileWriteError
from lriad_desktop.core.finding import MapSummary
from lriad_desktop.core.images import ImageLoadError, load_image
from lriad_desktop.core.map_banks import MapBanks, hint_for, map_summary, tower_of
from lriad_desktop.core.prompting import object_key
from lriad_desktop.core.vision_features import FeatureError


@dataclass
class ChunkMaps:
    """The maps of one chunk: per image path its summary (the hint in it is what the prompt carries), and the
    notices for the inspector (each said once per stage)."""

    summaries: dict[str, MapSummary] = field(default_factory=dict)
    rules: dict[str, FusionRule] = field(default_factory=dict)  # per image path: its object's fusion rule
    notices: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)  # objects whose bank was (re)built

    def hint(self, path: str) -> str:
        summary = self.summaries.get(path)
        return summary.hint if summary is not None else ""


class MapStage:
    """Maps images against their objects' banks (kept by `banks`), remembering what it has already said."""

    def __init__(self, banks: MapBanks) -> None:
        self.banks = banks
        self._said: set[str] = set()

    def _say(self, out: ChunkMaps, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            out.notices.append(text)

    def run(self, backend: Any, items: Sequence[tuple[str, str]], good: dict[str, Sequence[str]],
            hints: bool = True, check: Callable[[], None] | None = None,
            rules: dict[str, FusionRule] | None = None) -> ChunkMaps:
        """Maps for `items` (path, object name); `good[object_key]` are the object's good image paths
        (`map_banks.choose_good_images`), `rules[object_key]` its fusion rule (absent: the default). With
        `hints`, each summary carries its region hint sentence."""
        out = ChunkMaps()
        if not items:
            return out
        try:
            tower = tower_of(backend)
        except FeatureError as err:
            self._say(out, f"Anomaly map off: {err}")
            return out
        by_object: dict[str, list[tuple[str, str]]] = {}
        for path, name in items:
            by_object.setdefault(object_key(name), []).append((path, name))
        for key, members in by_object.items():
            name = members[0][1]
            paths = list(good.get(key, ()))
            bank = self._bank(out, tower, name, paths, check)
            if bank is None:
                continue
            for path, _name in members:
                try:
                    amap = map_images(tower, bank, [load_image(path).image])[0]
                except (ImageLoadError, OSError):
                    continue  # the inspection says why it can't read the image
                except AnomalyMapError as err:
                    self._say(out, str(err))
                    continue
                out.summaries[path] = map_summary(amap, bank, hint_for(amap) if hints else "")
                if rules and key in rules:
                    out.rules[path] = rules[key]
        return out

    def _bank(self, out: ChunkMaps, tower: Any, name: str, paths: list[str], check: Callable[[], None] | None):
        from lriad_desktop.core.anomaly_map import BankIdentity

        identity = BankIdentity.of(tower)
        bank = self.banks.current(name, identity, paths)
        if bank is not None:
            return bank
        if len(paths) < 2:
            self._say(out, self.banks.status(name, identity, paths).text())
            return None
        try:
            bank = self.banks.build(tower, name, paths, check=check)
        except (AnomalyMapError, FeatureError, FileWriteError) as err:
            self._say(out, str(err))
            return None
        out.built.append(name)
        return bank
