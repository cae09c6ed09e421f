"""Architecture rules (pyproject's import-linter contracts): core and training import no Qt, the UI never
imports training, the UI and training are each in layers, no import circles; importing the package stays light."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts():
    from importlinter.cli import lint_imports

    import os
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0
    finally:
        os.chdir(cwd)


def test_importing_the_package_does_not_load_torch_or_qt():
    code = ("import sys, lriad_desktop, lriad_desktop.cli.commands, lriad_desktop.core.backends.engine, lriad_desktop.core.inspection.parsing; "
            "heavy = [m for m in ('torch', 'transformers', 'PySide6', 'peft', 'trl') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""
