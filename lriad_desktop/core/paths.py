"""Where things live: bundled resources (source tree or frozen app) and the user's data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "lriad-desktop"
BUNDLED_MODEL_NAME = "lriad-tiny"


def resources_dir() -> Path:
    """The `resources/` folder: beside the package in a checkout, inside the bundle when frozen."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def bundled_model_dir() -> Path:
    """The bundled default model folder."""
    return resources_dir() / "models" / BUNDLED_MODEL_NAME


def model_folder(model_dir: str | os.PathLike | None) -> Path:
    """The model folder to use: `model_dir` when one is set (a path or a non-empty setting), else the
    bundled model."""
    return Path(model_dir) if model_dir else bundled_model_dir()


def sample_images_dir() -> Path:
    return resources_dir() / "samples"


def user_data_dir() -> Path:
    """The platform's per-user data folder (override with `LRIAD_DATA_DIR`)."""
    override = os.environ.get("LRIAD_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir as _udd

    return Path(_udd(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """The app's own models folder (downloads go here): `<user data>/models`."""
    return user_data_dir() / "models"
