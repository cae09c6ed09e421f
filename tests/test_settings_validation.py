"""settings.json is a file anyone can edit: a version that is not a number (`"x"`, `[2]`, `1e400`, NaN) and
fields that are NaN, infinite, of the wrong type or out of range fall back to their defaults with one warning,
so `lriad models list` and the GUI still start; a NaN improve tolerance can't turn a big
accuracy drop into "Recommended: Activate"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lriad_desktop.core.training_runs.verdict import ACTIVATE, DISCARD, run_verdict
from lriad_desktop.core.settings import Settings, load_settings, settings_path

REPO = Path(__file__).resolve().parents[1]


def _write(text: str) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("version", ['"x"', "[2]", "1e400", "NaN", "-Infinity", "{}", "true", "-3"])
def test_an_unreadable_version_is_one_note_and_the_settings_still_read(version):
    _write('{"version": %s, "batch_size": 8, "theme": "dark"}' % version)
    settings, notes = load_settings()
    assert settings.batch_size == 8 and settings.theme == "dark"
    assert len(notes) == 1 and "not a version number" in notes[0]


@pytest.mark.parametrize("field, raw", [("improve_tolerance", "NaN"), ("improve_tolerance", "Infinity"),
                                        ("improve_tolerance", "-1"), ("map_opacity", "NaN"),
                                        ("box_line_width", "1e400"), ("batch_size", "1e400"),
                                        ("batch_size", "[2]"), ("max_new_tokens", '"256"'),
                                        ("reference_count", "true"), ("recent_folders", "[1, 2]"),
                                        ("server_timeout_s", "99999999999999999999999999")])
def test_each_field_is_checked_for_type_range_and_finiteness(field, raw):
    _write('{"version": 1, "%s": %s, "theme": "light"}' % (field, raw))
    settings, notes = load_settings()
    assert getattr(settings, field) == getattr(Settings(), field)  # the default
    assert settings.theme == "light" and len(notes) == 1


def test_a_nan_tolerance_does_not_recommend_activating_a_big_drop():
    before = {"holdout": {"all": {"n": 20, "accuracy": 0.9, "label_accuracy": 0.9, "mean_iou": 0.5}}}
    after = {"holdout": {"all": {"n": 20, "accuracy": 0.1, "label_accuracy": 0.1, "mean_iou": 0.1}}}
    assert run_verdict(before, after, float("nan")).recommendation == DISCARD
    assert run_verdict(before, after, float("inf")).recommendation == DISCARD
    assert run_verdict(before, before, float("nan")).recommendation == ACTIVATE
    _write('{"version": 1, "improve_tolerance": NaN}')
    assert load_settings()[0].improve_tolerance == Settings().improve_tolerance


def test_models_list_starts_with_a_broken_settings_file_and_warns_once(tmp_path):
    command = ["models", "list"]
    _write('{"version": "x", "improve_tolerance": NaN, "model_folders": [2], "batch_size": 1e400}')
    env = dict(os.environ, PYTHONPATH=str(REPO), LRIAD_DATA_DIR=str(settings_path().parent))
    res = subprocess.run([sys.executable, "-m", "lriad_desktop", *command], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning: settings:")]
    assert len(warnings) == 1 and "not a version number" in warnings[0] and "Allowed loss" in warnings[0]


def test_the_gui_start_reads_a_broken_settings_file(capsys):
    pytest.importorskip("PySide6")
    from lriad_desktop.ui.window.app import _settings_for_run

    _write('{"version": [2], "improve_tolerance": NaN, "map_opacity": 1e400}')
    settings = _settings_for_run(None, None, None)
    assert settings.improve_tolerance == Settings().improve_tolerance
    assert settings.map_opacity == Settings().map_opacity
    assert "Traceback" not in capsys.readouterr().err
