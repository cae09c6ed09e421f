"""The anomaly map's memory banks as the app keeps them: one per object and model, in files beside the store.

A bank (`core.anomaly_map.patch_map.MemoryBank`) is built from an object's good images — its golden samples, then the
images reviewed as normal (`ReviewStore.good_images`) — on the chosen features (`core.anomaly_map.features`: the
shipped ImageNet CNN by default, or the loaded model's own vision tower), and saved
under the store's folder as `anomaly-maps/<object>-<model fingerprint>-<feature>.safetensors` with a manifest
(`.json`, written atomically after the bank) naming the good images it was built from. A bank is used only
with the model it was built with (`BankIdentity`: version, weights fingerprint, feature) and only while the
object's good images are the ones it was built from; otherwise it is out of date and is built again.

`finding_with_map` puts a map into a finding: the map's score and boxes (apart from the model's), and the
anomaly score fused from the verdict probability and the map (`anomaly_map.fused_score` with the object's
rule: `fit_fusion` on its reviewed images once there are enough, else `DEFAULT_FUSION`), saying which rule.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from lriad_desktop.core.anomaly_map.patch_map import (DEFAULT_FUSION, AnomalyMap, AnomalyMapError, BankBuilder, BankIdentity,
                                            EmptyBank, aligns, bank_scheme, FusionRule, MemoryBank, reads_places,
                                            fused_score, map_probability)
from lriad_desktop.core.atomic_files import FileWriteError, write_text_atomically
from lriad_desktop.core.inspection.finding import Finding, MapSummary
from lriad_desktop.core.inspection.images import ImageLoadError, load_image
from lriad_desktop.core.anomaly_map.registration import Registration
from lriad_desktop.core.inspection.prompting import object_key, object_phrase, region_hint
from lriad_desktop.core.backends.vision_features import FeatureError, VisionTower, model_fingerprint

BANK_FOLDER = "anomaly-maps"
MAX_BANK_IMAGES = 200  # golden samples first, then the newest images reviewed as normal
MIN_FUSED_BANK = 8  # below this many good images the map is shown but the score stays the model's (real photos,
# docs/anomaly-map.md: at 2 the leave-one-out normalisation calls 0-12 % of good parts defective, draw to draw; at 4
# up to 10 %; from 8 none)
LAZY_NEW = 3  # newly reviewed normal images a bank waits for before it is rebuilt (or 10 % of it)
_BATCH = 8

Progress = Callable[[int, int], None]


def object_slug(object_name: str) -> str:
    """A file-name-safe key of an object (its `object_key`, with a short digest so two names never collide)."""
    key = object_key(object_name)
    readable = re.sub(r"[^a-z0-9]+", "-", key).strip("-")[:40] or "object"
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def sources_digest(paths: Sequence[str]) -> str:
    """A digest of the good images a bank is built from: another set, another digest."""
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]


class GoodPaths(list):
    """Good image paths, golden samples first; `golden` says how many of them are golden samples (a plain list
    of paths counts as all golden: any change to it makes a bank out of date at once)."""

    def __init__(self, paths: Sequence[str] = (), golden: int | None = None) -> None:
        super().__init__(paths)
        self.golden = len(self) if golden is None else golden


def golden_count(paths: Sequence[str]) -> int:
    return getattr(paths, "golden", len(paths))


def choose_good_images(paths_golden_first: Sequence[str], golden: int) -> GoodPaths:
    """The good images a bank is built from: every golden sample (the first `golden` paths), then the newest
    images reviewed as normal, at most `MAX_BANK_IMAGES` in all."""
    head = list(paths_golden_first[:golden])[:MAX_BANK_IMAGES]
    room = MAX_BANK_IMAGES - len(head)
    rest = list(paths_golden_first[golden:])
    return GoodPaths(head + (rest[-room:] if room > 0 else []), len(head))


def still_usable(built: Sequence[str], built_golden: int, good: Sequence[str]) -> bool:
    """Whether a bank built from `built` (its first `built_golden` golden samples) may still be used with the
    good images now: the same golden samples, none of its images gone (a normal image flagged defective must
    leave the bank at once), and only a few newly reviewed normal ones (fewer than `LAZY_NEW`, or 10 % of the
    bank): each accepted normal image does not cost a rebuild; the bank row says it is out of date."""
    if list(built[:built_golden]) != list(good[:golden_count(good)]) or not set(built) <= set(good):
        return False
    return len(set(good) - set(built)) < max(LAZY_NEW, len(built) // 10)


@dataclass(frozen=True)
class BankStatus:
    """What the app knows about an object's bank for the model in use, for the strip beside the golden samples."""

    object_name: str
    images: int = 0  # good images in the saved bank (0: none saved)
    features: int = 0
    built_at: float | None = None
    good_images: int = 0  # good images the store holds now
    stale: str = ""  # "" when the saved bank is current; else why it will be built again
    note: str = ""  # why there is no map at all (too few good images, a server without a local copy)

    @property
    def usable(self) -> bool:
        return self.images > 0 and not self.stale and not self.note

    def text(self, now: float | None = None) -> str:
        """"Anomaly map · 12 good images · built 5 min ago", or why there is none."""
        if self.note:
            return f"Anomaly map off: {self.note}"
        if self.images == 0:
            if self.good_images < 2:
                have = "none" if self.good_images == 0 else "only one"
                return (f"No anomaly map: it needs at least two good images of the {object_phrase(self.object_name)} "
                        f"(golden samples or images reviewed as normal); there is {have}")
            return f"Anomaly map not built yet: {self.good_images} good images (built before the next inspection)"
        text = f"Anomaly map · {self.images} good image{'s' if self.images != 1 else ''} · built {age(self.built_at, now)}"
        return text + (f" · out of date: {self.stale}" if self.stale else "")


def age(when: float | None, now: float | None = None) -> str:
    """How long ago, in words: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    if when is None:
        return "never"
    seconds = max(0.0, (time.time() if now is None else now) - when)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


class MapBanks:
    """The banks saved in one folder (the store's `anomaly-maps`), and the ones loaded, kept in memory."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._loaded: dict[tuple[str, BankIdentity], tuple[str, MemoryBank]] = {}

    @classmethod
    def beside(cls, store_path: str | Path) -> "MapBanks":
        """The banks of the review store at `store_path` (a folder next to it)."""
        return cls(Path(store_path).parent / BANK_FOLDER)

    def bank_path(self, object_name: str, identity: BankIdentity) -> Path:
        feature = identity.feature.replace(":", "")
        return self.folder / f"{object_slug(object_name)}-{identity.fingerprint}-{feature}.safetensors"

    def _manifest(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def status(self, object_name: str, identity: BankIdentity | None, good_paths: Sequence[str],
               note: str = "") -> BankStatus:
        """The bank of `object_name` for the model `identity` (None: the model isn't loaded yet) against the
        good images the store holds now (`good_paths`, as `choose_good_images` picked them)."""
        if note:
            return BankStatus(object_name, good_images=len(good_paths), note=note)
        manifest = self._manifest(self.bank_path(object_name, identity)) if identity is not None else None
        if manifest is None:
            other = self._any_manifest(object_name)
            if other is None:
                return BankStatus(object_name, good_images=len(good_paths))
            stale = "built with another model" if identity is not None else ""
            return BankStatus(object_name, int(other.get("images", 0)), int(other.get("features", 0)),
                              other.get("built_at"), len(good_paths), stale)
        stale = ""
        if manifest.get("sources") != sources_digest(good_paths):
            built_from = set(manifest.get("paths") or ())
            added = len(set(good_paths) - built_from)
            gone = len(built_from - set(good_paths))
            stale = ", ".join(bit for bit in (f"{added} new good image{'s' if added != 1 else ''}" if added else "",
                                              f"{gone} no longer good" if gone else "") if bit) or "good images changed"
        return BankStatus(object_name, int(manifest.get("images", 0)), int(manifest.get("features", 0)),
                          manifest.get("built_at"), len(good_paths), stale)

    def _any_manifest(self, object_name: str) -> dict[str, Any] | None:
        found = sorted(self.folder.glob(f"{object_slug(object_name)}-*.json"), key=lambda p: p.stat().st_mtime)
        return self._manifest(found[-1]) if found else None

    def current(self, object_name: str, identity: BankIdentity, good_paths: Sequence[str]) -> MemoryBank | None:
        """The saved bank when it is current for this model and these good images (or `still_usable` with
        them), else None: it is to be built again. Loaded from its file once."""
        path = self.bank_path(object_name, identity)
        manifest = self._manifest(path)
        if manifest is None or not path.is_file():
            return None
        built = manifest.get("paths") or []
        if manifest.get("sources") != sources_digest(good_paths) and not still_usable(
                built, int(manifest.get("golden", len(built))), good_paths):
            return None
        key = (object_key(object_name), identity)
        cached = self._loaded.get(key)
        if cached is not None and cached[0] == manifest.get("sources"):
            return cached[1]
        try:
            bank = MemoryBank.from_file(path, identity)
        except AnomalyMapError:  # damaged or another model's (StaleBank): built again
            return None
        self._loaded[key] = (manifest.get("sources"), bank)
        return bank

    def build(self, tower: VisionTower, object_name: str, good_paths: Sequence[str],
              progress: Progress | None = None, check: Callable[[], None] | None = None) -> MemoryBank:
        """Build the bank of `object_name` from `good_paths` and save it. Raises `EmptyBank` (fewer than two
        readable good images, said in words), `FeatureError`, `FileWriteError` (the folder can't be written)."""
        identity = BankIdentity.of(tower)
        readable: list[str] = []
        total = len(good_paths)
        builder: BankBuilder | None = None  # image by image: a large bank never sits whole
        for at in range(0, total, _BATCH):
            if check is not None:
                check()
            images = []
            for path in good_paths[at:at + _BATCH]:
                try:
                    images.append(load_image(path).image)
                    readable.append(path)
                except (ImageLoadError, OSError):
                    continue  # a good image deleted or damaged since: built without it
            if images and builder is None:  # a source that registers: every good image onto the first readable one
                max_bank, top_k = bank_scheme(tower)
                builder = BankBuilder(object_name, identity, total, max_bank, top_k,
                                      registration=Registration.from_image(images[0]) if aligns(tower) else None,
                                      by_place=reads_places(tower))
            if builder is not None and builder.registration is not None:
                images = [builder.registration.align(im)[0] for im in images]
            if images:
                builder.add(tower.features(images, identity.feature))
            if progress is not None:
                progress(min(total, at + _BATCH), total)
        added = builder.added if builder is not None else 0
        if builder is None or added < 2:
            lost = total - added
            have = "none" if not added else "only one"
            unreadable = f" ({lost} can't be read)" if lost else ""
            raise EmptyBank(f"No anomaly map for the {object_phrase(object_name)}: it needs at least two good images "
                            f"(golden samples or images reviewed as normal); there is {have}{unreadable}")
        bank = builder.finish()
        path = self.bank_path(object_name, identity)
        try:
            bank.to_file(path)
        except OSError as err:
            raise FileWriteError(path, err) from None
        manifest = {"object": object_name, "model_version": identity.model_version,
                    "fingerprint": identity.fingerprint, "feature": identity.feature,
                    "sources": sources_digest(good_paths), "paths": list(good_paths),
                    "golden": golden_count(good_paths), "images": bank.n_images,
                    "features": bank.size, "built_at": bank.built_at, "build_seconds": bank.build_seconds}
        write_text_atomically(path.with_suffix(".json"), json.dumps(manifest, indent=1))  # the bank counts from here
        self._loaded[(object_key(object_name), identity)] = (sources_digest(good_paths), bank)
        return bank


def tower_of(backend: Any) -> VisionTower:
    """The vision tower of an inspection backend's model, reusing the weights it has loaded (the in-process
    `Inspector`'s, kept on it as `map_tower` until it closes; a tiled backend's inner one; a server's local
    copy). Raises `FeatureError` with the reason when it has none (a server without a local copy)."""
    if hasattr(backend, "loaded_model"):
        if backend.map_tower is None:
            model, processor = backend.loaded_model()
            backend.map_tower = VisionTower(model, processor, backend.geometry, backend.model_version,
                                            model_fingerprint(backend.info.path, backend.adapter_dir),
                                            backend.device or "cpu")
        return backend.map_tower
    inner = getattr(backend, "inner", None)
    if inner is not None and not hasattr(backend, "vision_tower"):
        return tower_of(inner)
    make = getattr(backend, "vision_tower", None)
    if make is None:
        raise FeatureError(f"{getattr(backend, 'model_version', 'this model')} has no vision tower to compare with")
    return make()


def map_summary(amap: AnomalyMap, bank: MemoryBank, hint: str = "") -> MapSummary:
    """What a finding keeps of a map: score, boxes, the cell grid in normalised units (3 decimals, as stored),
    the bank's size."""
    cells = bank.normalise(amap.cells)
    return MapSummary(float(amap.score), tuple(amap.boxes),
                      tuple(tuple(round(float(v), 3) for v in row) for row in cells.tolist()), bank.n_images, hint)


def hint_for(amap: AnomalyMap) -> str:
    """The region hint sentence for the prompt from a map's regions ("" when the map sees none)."""
    return region_hint([b.as_list(None) for b in amap.boxes], amap.image_size)


def finding_with_map(finding: Finding, summary: MapSummary, rule: FusionRule | None = None) -> Finding:
    """The finding with the map's view beside the model's: its summary and the anomaly score fused by `rule`
    (the object's; None: `DEFAULT_FUSION`), which the finding names. A bank of fewer than `MIN_FUSED_BANK`
    good images is too thin to decide with (its normalisation rests on a few leave-one-out scores): the
    score stays the model's, and the rule says why."""
    if summary.bank_images < MIN_FUSED_BANK:
        return replace(finding, anomaly_map=summary, score_rule=f"model alone: the map counts from {MIN_FUSED_BANK} "
                                                                 f"good images, it has {summary.bank_images}")
    rule = rule or DEFAULT_FUSION
    fused = fused_score(finding.verdict_probability, summary.score, rule)
    return replace(finding, anomaly_map=summary, anomaly_score=fused, score_rule=rule.describe())


def describe_fusion(finding: Finding) -> str:
    """"model 0.62 · map 0.80 · fusion: map alone (default)" for the finding panel; "" without a map."""
    if finding.anomaly_map is None:
        return ""
    model = "—" if finding.verdict_probability is None else f"{finding.verdict_probability:.2f}"
    return f"model {model} · map {map_probability(finding.anomaly_map.score):.2f} · {finding.score_rule}"


__all__ = ["BANK_FOLDER", "BankStatus", "EmptyBank", "FeatureError", "GoodPaths", "LAZY_NEW", "still_usable", "FileWriteError", "MapBanks",
           "MAX_BANK_IMAGES", "MIN_FUSED_BANK", "age", "choose_good_images", "describe_fusion", "finding_with_map", "hint_for",
           "map_summary", "object_slug", "sources_digest", "tower_of"]
