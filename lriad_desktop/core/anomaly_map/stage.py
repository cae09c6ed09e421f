"""The anomaly map beside each inspection: before the model answers, each image is compared with its object's
good images (a bank from `core.anomaly_map.banks`, built or built again when out of date); the map's region hint can
close the prompt, and afterwards the map goes into the finding (`map_banks.finding_with_map`).

Runs where inspection runs (the app's model lane), on the features the stage's `feature` names
(`core.anomaly_map.features`: the shipped ImageNet CNN by default, or the weights the inspection backend has loaded).
A map that can't be made is never an error of the inspection: the image is inspected without a map. Too few
good images or a backend without a tower are expected (the bank row beside the golden samples says so:
`ChunkMaps.skipped`); a bank that can't be built or saved is a notice, once per reason.

Each object's fusion rule is fitted on its reviewed images (`fit_fusion`: the map's score and the verdict
probability of their latest findings against the review), read through the stage's own store connection and
refitted when a review was written since.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from lriad_desktop.core.anomaly_map.patch_map import AnomalyMapError, FusionRule, fit_fusion, map_images
from lriad_desktop.core.atomic_files import FileWriteError
from lriad_desktop.core.inspection.finding import MapSummary, Verdict
from lriad_desktop.core.inspection.images import ImageLoadError, load_image
from lriad_desktop.core.anomaly_map.banks import MapBanks, hint_for, map_summary
from lriad_desktop.core.anomaly_map.features import DEFAULT_MAP_FEATURE, map_source
from lriad_desktop.core.inspection.prompting import object_key
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.core.backends.vision_features import FeatureError

log = logging.getLogger(__name__)


@dataclass
class ChunkMaps:
    """The maps of one chunk: per image path its summary (the hint in it is what the prompt carries), and the
    notices for the inspector (each said once per stage)."""

    summaries: dict[str, MapSummary] = field(default_factory=dict)
    rules: dict[str, FusionRule] = field(default_factory=dict)  # per image path: its object's fusion rule
    notices: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # object name -> why it has no map (expected)
    built: list[str] = field(default_factory=list)  # objects whose bank was (re)built

    def hint(self, path: str) -> str:
        summary = self.summaries.get(path)
        return summary.hint if summary is not None else ""


class MapStage:
    """Maps images against their objects' banks (kept by `banks`), remembering what it has already said."""

    def __init__(self, banks: MapBanks, store_path: str | Path | None = None,
                 feature: str = DEFAULT_MAP_FEATURE) -> None:
        self.banks = banks
        self.feature = feature  # `map_features`: "cnn" (the shipped ImageNet CNN) or "tower" (the model's own)
        self.store_path = store_path  # where the reviews that fit each object's fusion rule are
        self._said: set[str] = set()
        self._rules: dict[str, FusionRule] = {}
        self._rules_at = -1  # the store's data revision the rules were fitted at

    def _say(self, out: ChunkMaps, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            out.notices.append(text)

    def run(self, backend: Any, items: Sequence[tuple[str, str]], good: dict[str, Sequence[str]],
            hints: bool = True, check: Callable[[], None] | None = None) -> ChunkMaps:
        """Maps for `items` (path, object name); `good[object_key]` are the object's good image paths
        (`map_banks.choose_good_images`). With `hints`, each summary carries its region hint sentence."""
        out = ChunkMaps()
        if not items:
            return out
        try:
            tower = map_source(backend, self.feature)
        except FeatureError as err:
            out.skipped = {name: f"Anomaly map off: {err}" for _path, name in items}
            return out
        rules = self.rules()
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
                if key in rules:
                    out.rules[path] = rules[key]
        return out

    def _bank(self, out: ChunkMaps, tower: Any, name: str, paths: list[str], check: Callable[[], None] | None):
        from lriad_desktop.core.anomaly_map.patch_map import BankIdentity

        identity = BankIdentity.of(tower)
        bank = self.banks.current(name, identity, paths)
        if bank is not None:
            return bank
        if len(paths) < 2:
            out.skipped[name] = self.banks.status(name, identity, paths).text()
            return None
        try:
            bank = self.banks.build(tower, name, paths, check=check)
        except (AnomalyMapError, FeatureError, FileWriteError) as err:
            self._say(out, str(err))
            return None
        out.built.append(name)
        return bank

    def rules(self) -> dict[str, FusionRule]:
        """Each object's fitted fusion rule (by object key; an object without enough reviews is absent: the
        default), refitted when the store has a review it hasn't seen."""
        if self.store_path is None:
            return {}
        try:
            with ReviewStore.open(self.store_path, durable=False) as store:
                revision = store.data_revision()
                if revision != self._rules_at:
                    self._rules, self._rules_at = fusion_rules(store), revision
        except StoreError as err:
            log.warning("fusion rules: %s", err)
        return self._rules


def fusion_rules(store: ReviewStore) -> dict[str, FusionRule]:
    """Per object key, the fusion rule fitted on its reviewed images whose latest finding has a map and a
    verdict probability; objects with too few of either kind are left out (they use the default)."""
    pairs: dict[str, list[tuple[float | None, float | None, bool]]] = {}
    for state in store.reviewed_states():
        f = state.finding
        if f is None or f.anomaly_map is None or state.review is None:
            continue
        pairs.setdefault(object_key(state.image.object_name), []).append(
            (f.verdict_probability, f.anomaly_map.score, state.review.review.verdict is Verdict.ANOMALOUS))
    rules = {}
    for key, rows in pairs.items():
        rule = fit_fusion(rows)
        if rule.fitted_on:
            rules[key] = rule
    return rules
