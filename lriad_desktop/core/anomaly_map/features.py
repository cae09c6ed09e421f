"""Which features the anomaly map compares on: a named choice, recorded in every bank.

* ``cnn`` (the default): ImageNet features of the EfficientNet-Lite0 shipped with the app
  (`core.anomaly_map.cnn_features`, feature string ``cnn:efficientnet_lite0@320``). Real photos need real features;
  measured best on real photos (docs/anomaly-map.md), and it needs no model at all: a server backend without a
  local copy gets a map too.
* ``tower``: the loaded model's own vision tower (`core.backends.vision_features`, e.g. ``block:0+1@448`` on the demo
  model). Kept for a real Qwen-VL model, whose tower has seen real images; unmeasured on real photos until a
  GPU run measures it.

A bank records the feature string and the source's weights fingerprint (`anomaly_map.BankIdentity`); a bank
built with one choice is built again (the app) or refused with `StaleBank` (a saved bank loaded for another).
"""

from __future__ import annotations

from typing import Any

from lriad_desktop.core.anomaly_map.cnn_features import CNN_FEATURE, is_cnn_feature, shared_cnn
from lriad_desktop.core.backends.vision_features import FeatureError

CNN = "cnn"
TOWER = "tower"
MAP_FEATURE_CHOICES = (CNN, TOWER)
MAP_FEATURE_NAMES = ("ImageNet features shipped with the app", "The model's own vision tower")
DEFAULT_MAP_FEATURE = CNN


def feature_string(choice: str, source: Any) -> str:
    """The feature string a choice means on `source` (`cnn`: the CNN's default, `tower`: the tower's default;
    any other string is taken as a feature string itself)."""
    if choice == CNN:
        return CNN_FEATURE
    if choice == TOWER:
        return source.default_feature
    return choice


def needs_model(choice: str) -> bool:
    """Whether the choice compares on the model's own tower (so the model's local weights are needed)."""
    return not (choice == CNN or is_cnn_feature(choice))


def map_source(backend: Any, choice: str = DEFAULT_MAP_FEATURE, device: str = "cpu") -> Any:
    """The feature source of a choice: the shipped CNN (`backend` unused), or the backend's vision tower
    (`map_banks.tower_of`). Raises `FeatureError` with the reason when it can't give features."""
    if not needs_model(choice):
        return shared_cnn(device)
    if backend is None:
        raise FeatureError("the anomaly map on the model's own vision tower needs the model loaded")
    from lriad_desktop.core.anomaly_map.banks import tower_of

    return tower_of(backend)


def check_choice(choice: str) -> str:
    """`choice` when it is `cnn`, `tower` or a feature string the sources parse; else `FeatureError`."""
    from lriad_desktop.core.anomaly_map.cnn_features import parse_cnn_feature
    from lriad_desktop.core.backends.vision_features import parse_feature

    if choice in MAP_FEATURE_CHOICES:
        return choice
    if is_cnn_feature(choice):
        parse_cnn_feature(choice)
    else:
        parse_feature(choice)
    return choice
