"""The house stays legible: rooms of at most 15 modules, each with a docstring; a short README whose links
into docs/ all resolve."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lriad_desktop", "training")


def _folders() -> list[Path]:
    return [p for top in PACKAGES for p in [ROOT / top, *(ROOT / top).rglob("*")]
            if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))]  # a folder of data files is no room


def test_every_folder_is_a_package_of_at_most_15_modules_with_a_docstring():
    for folder in _folders():
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder.relative_to(ROOT)} has no __init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{init.relative_to(ROOT)} doesn't say what the room holds"
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 15, f"{folder.relative_to(ROOT)} holds {len(modules)} modules: split it"


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_short_and_every_link_resolves():
    readme = ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 250
    broken = []
    for page in [readme, *(ROOT / "docs").glob("*.md")]:
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path) if path else page
            if not target.exists():
                broken.append(f"{page.name}: {link}")
            elif anchor and target.suffix == ".md":
                headings = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", target.read_text(encoding="utf-8"), re.M)}
                if anchor not in headings:
                    broken.append(f"{page.name}: {link}")
    assert broken == []


def test_no_assignment_expression_inside_a_comprehension():
    """Plain loops instead: a walrus in one branch of a conditional comprehension once hid a NameError that
    made Re-inspect All do nothing."""
    found = []
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                    found += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(node)
                              if isinstance(n, ast.NamedExpr)]
    assert found == []
