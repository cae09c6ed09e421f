"""Model versions without Qt: what a version is, where the app keeps the adapters it trains, which
registered version a model folder is, and what "Roll back" activates.

The versions themselves are rows of the review store (`ReviewStore.model_versions()` and friends);
in the app every write to them goes through the controller.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from lriad_desktop.core.paths import BUNDLED_MODEL_NAME, bundled_model_dir, user_data_dir


@dataclass(frozen=True)
class ModelVersion:
    """A model the app can inspect with: a base folder plus an optional LoRA adapter."""

    id: int
    name: str
    base_path: str
    adapter_path: str | None
    parent_id: int | None
    data_revision: int | None
    metrics: dict[str, Any]
    created_at: str
    active: bool
    status: str = "ready"  # "ready" | "discarded" (the inspector discarded it; its adapter folder may be gone)
    discarded_at: str | None = None

    @property
    def discarded(self) -> bool:
        """The inspector discarded this version: it stays listed, and can't be activated until restored."""
        return self.status == "discarded"

    @property
    def recovered(self) -> bool:
        """A version found on disk after its training run was interrupted (registered inactive by
        `core.training_runs.recovery`; `metrics["recovered"]` says why and when)."""
        return "recovered" in self.metrics


def version_label(model_version: str) -> str:
    """The version a finding's `model_version` names, as the app names it everywhere: 'lriad-tiny-v1' for the
    engine's 'lriad-tiny+lriad-tiny-v1' (base + adapter; a version is named after its adapter folder), the base
    model's name without an adapter. The stored string keeps both, for exports."""
    base, plus, adapter = model_version.rpartition("+")
    return adapter if plus and base and adapter else model_version


def adapters_dir() -> Path:
    """Where the app keeps the adapters it trains (`user_data_dir()/adapters`)."""
    return user_data_dir() / "adapters"


def next_adapter_dir(root: Path, base_name: str, taken: Iterable[str] = ()) -> Path:
    """`root/<base_name>-vN` for the first N ≥ 1 that is neither a folder there nor a name in `taken`
    (a discarded version keeps its name in the store, so its folder name is never reused)."""
    used = set(taken)
    pattern = re.compile(rf"^{re.escape(base_name)}-v(\d+)$")
    names = list(used) + ([p.name for p in root.iterdir()] if root.is_dir() else [])
    numbers = []
    for name in names:
        match = pattern.match(name)
        if match:
            numbers.append(int(match.group(1)))
    n = max(numbers, default=0) + 1
    return root / f"{base_name}-v{n}"


def files_present(version: ModelVersion) -> bool:
    """Its base folder can be found and its adapter (if any) still exists."""
    adapter_ok = version.adapter_path is None or Path(version.adapter_path).is_dir()
    return adapter_ok and resolve_base(version.base_path).is_dir()


def is_available(version: ModelVersion) -> bool:
    """A version can be activated: not discarded, and its files are there."""
    return not version.discarded and files_present(version)


def trained_here(version: ModelVersion) -> bool:
    """Its adapter folder is one the app trained (directly in `adapters_dir()`): only those are ever deleted."""
    return bool(version.adapter_path) and Path(version.adapter_path).resolve().parent == adapters_dir().resolve()


def version_state(version: ModelVersion) -> str:
    """One word for the version's state, the same in the app and `lriad versions`: 'active', 'discarded',
    'deleted' (its files are gone, no discard recorded), 'recovered', or 'ready'."""
    if version.active:
        return "active"
    if version.discarded:
        return "discarded"
    if not files_present(version):
        return "deleted"
    return "recovered" if version.recovered else "ready"


def resolve_base(base_path: str) -> Path:
    """The base folder of a version; the bundled model wherever this copy of the app keeps it."""
    path = Path(base_path)
    if not path.is_dir() and path.name == BUNDLED_MODEL_NAME:
        return bundled_model_dir()
    return path


def _same_path(a: str | None, b: str | os.PathLike | None) -> bool:
    if not a or not b:
        return not a and not b
    return os.path.realpath(a) == os.path.realpath(b)


def find_version(versions: Sequence[ModelVersion], base: Path, adapter: Path | None) -> ModelVersion | None:
    """The newest registered version with this base folder and adapter."""
    for v in reversed(versions):
        if _same_path(str(resolve_base(v.base_path)), base) and _same_path(v.adapter_path, adapter):
            return v
    return None


class VersionRegistry(Protocol):
    """Where versions are registered (the review store's model-version table)."""

    def model_versions(self) -> list[ModelVersion]: ...
    def active_model_version(self) -> ModelVersion | None: ...
    def activate_model_version(self, version_id: int | None) -> None: ...
    def add_model_version(self, name: str, base_path: str, adapter_path: str | None = None,
                          parent_id: int | None = None, data_revision: int | None = None,
                          metrics: dict[str, Any] | None = None) -> ModelVersion: ...


def sync_active_version(store: VersionRegistry, base: Path, adapter: Path | None) -> ModelVersion:
    """Make the model the settings point at the store's active version, registering it on first use
    (the bundled or chosen base model becomes a version like any adapter)."""
    version = find_version(store.model_versions(), base, adapter)
    if version is None:
        name = adapter.name if adapter is not None else base.name
        version = store.add_model_version(name, str(base), str(adapter) if adapter else None)
    active = store.active_model_version()
    if active is None or active.id != version.id:
        store.activate_model_version(version.id)
    return next(v for v in store.model_versions() if v.id == version.id)


def rollback_target(versions: Sequence[ModelVersion], active: ModelVersion | None) -> ModelVersion | None:
    """What "Roll back" activates: the active version's parent, else the newest older usable version."""
    if active is None:
        return None
    by_id = {v.id: v for v in versions}
    parent = by_id.get(active.parent_id) if active.parent_id is not None else None
    if parent is not None and is_available(parent):
        return parent
    older = [v for v in versions if v.id < active.id and is_available(v)]
    return older[-1] if older else None
