"""The controller's model-version commands ("Improve model"): the version in use, activating one (also on a
model server), discarding one, and putting right what killed training runs left.

A part of `AppController` (its base class, so widgets keep calling `controller.activate_version`): it uses
the controller's store, settings, runner, `notice` and `versionsChanged` signals and `update_settings`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.paths import bundled_model_dir, model_folder
from lriad_desktop.core.training_runs.recovery import Reconciled, reconcile_training
from lriad_desktop.core.settings import SettingsError
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.core.store.adapter_versions import (ModelVersion, adapters_dir, files_present, find_version, is_available,
                                         resolve_base, sync_active_version, trained_here)
from lriad_desktop.ui.review.queue_model import QueueEntry
from lriad_desktop.ui.tasks import TaskContext

log = logging.getLogger(__name__)


class ModelVersionActions:
    """Model versions, for `AppController` (see the module docstring)."""

    def flag_count(self) -> int:
        """Images whose current review disagrees with the model: flags and corrections (what "Improve model"
        learns from)."""
        try:
            return self.store.counts().to_learn
        except StoreError:
            return 0

    def reviewed_finding(self, entry: QueueEntry | None) -> Finding | None:
        """The finding an image's review was made against, when a re-inspection has since replaced it (so "Model
        said" names the version that said it); None otherwise, or when the store can't say."""
        if entry is None or not entry.reinspected or entry.review is None or entry.review.review.inspection_id is None:
            return None
        try:
            record = self.store.inspection(entry.review.review.inspection_id)
        except StoreError:
            return None
        if record is None:
            return None
        return record.finding if record.finding.model_version else replace(record.finding,
                                                                            model_version=record.model_version)

    def model_in_use(self) -> ModelVersion | None:
        """The registered version the settings' model and adapter are, if any."""
        s = self.settings
        return find_version(self.store.model_versions(), model_folder(s.model_dir),
                            Path(s.adapter_dir) if s.adapter_dir else None)

    def register_model_in_use(self) -> ModelVersion:
        """Register the settings' model (base + adapter) as a version on first use and make it the active one
        (so it is listed, and a run trained on it has a parent). Raises `StoreError`."""
        s = self.settings
        return sync_active_version(self.store, model_folder(s.model_dir),
                                   Path(s.adapter_dir) if s.adapter_dir else None)

    def activate_version(self, version_id: int) -> bool:
        """Make a version the active one: the very next inspection uses its base + adapter (reloaded in
        the background, no restart)."""
        version = next((v for v in self.store.model_versions() if v.id == version_id), None)
        if version is not None and version.discarded:
            self.notice.emit(f"{version.name} was discarded: restore it in Model Versions before activating it")
            return False
        if version is None or not is_available(version):
            self.notice.emit("That model version can't be used: its adapter or base folder is gone")
            return False
        base = resolve_base(version.base_path)
        try:
            settings = self.settings.with_changes(model_dir="" if base == bundled_model_dir() else str(base),
                                                  adapter_dir=version.adapter_path or "")
            self.store.activate_model_version(version.id)
        except (StoreError, SettingsError) as err:
            self.notice.emit(str(err))
            return False
        self.update_settings(settings)
        self.versionsChanged.emit()
        if settings.inference == "server" and version.adapter_path:
            self._activate_on_server(version)
        else:
            self.notice.emit(f"Model version {version.name} is active: the next inspection uses it")
        return True

    def _activate_on_server(self, version: ModelVersion) -> None:
        """Inspecting on a server: have it serve the version's adapter under its LoRA name (in the background),
        then send requests to that name; a server that can't load adapters gets the command to run."""
        from lriad_desktop.core.backends.server import ServerConfig
        from lriad_desktop.core.backends.server_adapters import activate_adapter_on_server, lora_name

        config, name, path = ServerConfig.from_settings(self.settings), lora_name(version.name), version.adapter_path

        def done(result, error: BaseException | None) -> None:  # noqa: ANN001 - AdapterOnServer
            if error is not None:
                raise error
            if result.ok:
                self.update_settings(replace(self.settings, server_model=result.name))
                self.notice.emit(f"{result.message}: model version {version.name} is active on the server")
            else:
                log.info("adapter %s not served: %s", result.name, " | ".join(result.commands))
                self.notice.emit(result.message)

        self.notice.emit(f"Asking the model server to serve {name}…")
        self.runner.submit(lambda ctx: activate_adapter_on_server(config, name, path or ""), done, lane="io")

    def reconcile_training(self, when: str = "found at the app's start") -> None:
        """Put right, in the background, what killed training runs left: runs still `running` become
        `interrupted`, complete orphan adapters in the adapters folder are listed (inactive, recovered),
        temp folders go. Runs alive elsewhere hold their lock and are left alone. Says what it found."""
        path = self.store.path

        def work(ctx: TaskContext) -> Reconciled:
            with ReviewStore.open(path) as store:
                return reconcile_training(store, [adapters_dir()], when)

        def done(found: Reconciled | None, error: BaseException | None) -> None:
            if isinstance(error, (StoreError, OSError)):
                self.notice.emit(f"Can't check earlier training runs: {error}")
            elif error is not None:
                raise error
            elif found is not None and found.summary():
                self.notice.emit(f"Earlier training runs: {found.summary()}")
                self.versionsChanged.emit()

        self.runner.submit(work, done, lane="io")

    def discard_version(self, version_id: int) -> bool:
        """Mark a version discarded (its row, name and figures stay; it reads "discarded", can't be activated
        until restored), then delete its adapter folder in the background to free the disk. Only adapters the
        app trained (under the data folder) are deleted; another folder is left where it is. The active
        version, or a base model, is never discarded."""
        version = next((v for v in self.store.model_versions() if v.id == version_id), None)
        if version is None or version.active or not version.adapter_path:
            self.notice.emit("The active model version can't be discarded" if version is not None and version.active
                             else "Nothing to discard")
            return False
        try:
            self.store.discard_model_version(version.id)
        except StoreError as err:
            self.notice.emit(str(err))
            return False
        self.versionsChanged.emit()
        folder = Path(version.adapter_path)
        if not trained_here(version):
            self.notice.emit(f"Discarded {version.name}; {folder} was not trained by this app: it is left where it is")
            return True

        def done(_: object, error: BaseException | None) -> None:
            if isinstance(error, OSError):
                self.notice.emit(f"Discarded {version.name}, but can't delete {folder}: {error.strerror or error}")
            elif error is not None:
                raise error
            else:
                self.notice.emit(f"Discarded {version.name}")
            self.versionsChanged.emit()

        self.runner.submit(lambda ctx: shutil.rmtree(folder) if folder.exists() else None, done, lane="io")
        return True

    def restore_version(self, version_id: int) -> bool:
        """Undo a discard: listed as ready again. Refused once its adapter folder is gone (it would read
        "deleted" and lose the record of the discard)."""
        try:
            version = self.store.model_version(version_id)
            if not files_present(version):
                self.notice.emit(f"Can't restore {version.name}: its adapter folder was deleted")
                return False
            version = self.store.restore_model_version(version_id)
        except StoreError as err:
            self.notice.emit(str(err))
            return False
        self.versionsChanged.emit()
        self.notice.emit(f"Restored {version.name}: it can be activated again")
        return True
