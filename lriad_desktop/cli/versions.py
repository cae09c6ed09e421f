"""`lriad versions`: the model versions of a review store with their state (active, ready, discarded, deleted,
recovered) and the guard's verdict on their held-out figures; `discard ID` and `restore ID`."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def add_parser(sub) -> None:
    """Add `versions` to the `lriad` sub-command parsers."""
    p = sub.add_parser("versions", help="list the model versions of a review store (with their state); discard or "
                                        "restore one")
    p.add_argument("--db", type=Path, default=None, metavar="STORE",
                   help="the review store (default: the app's own, in the user data folder)")
    p.add_argument("--tolerance", type=float, default=None, metavar="POINTS",
                   help="the allowed loss on held-out images for the verdict column (default: the app's setting)")
    vsub = p.add_subparsers(dest="versions_command")
    vsub.add_parser("list", help="the versions, newest last (the default)")
    d = vsub.add_parser("discard", help="mark a version discarded and delete its adapter folder if the app trained it")
    d.add_argument("id", type=int)
    d.add_argument("--keep-files", action="store_true", help="leave the adapter folder where it is")
    r = vsub.add_parser("restore", help="undo a discard (the version can be activated again if its files are there)")
    r.add_argument("id", type=int)


def _tolerance(args: argparse.Namespace) -> float:
    if args.tolerance is not None:
        return args.tolerance
    from lriad_desktop.core.settings import load_settings_warned

    return load_settings_warned().improve_tolerance


def _verdict_word(version, tolerance: float) -> str:
    from lriad_desktop.core.training_runs.verdict import version_verdict

    verdict = version_verdict(version.metrics, tolerance)
    if verdict is None:
        return "-"
    return {"discard": "discard: " + ", ".join(f"{d.words} fell" for d in verdict.drops),
            "unsure": "can't judge", "activate": "keeps the others"}[verdict.recommendation]


def cmd_versions(args: argparse.Namespace) -> int:
    """List, discard or restore; exit 0, or 2 with one line when the store or the version can't be used."""
    from lriad_desktop.cli.export import existing_store
    from lriad_desktop.core.store.review_store import ReviewStore, StoreError
    from lriad_desktop.core.store.adapter_versions import files_present, trained_here, version_state

    db = existing_store(args.db)
    if db is None:
        return 2
    try:
        with ReviewStore.open(db) as store:
            command = args.versions_command or "list"
            if command == "discard":
                version = store.discard_model_version(args.id)
                removed = ""
                if not args.keep_files and trained_here(version) and Path(version.adapter_path or "").is_dir():
                    try:
                        shutil.rmtree(version.adapter_path or "")
                        removed = f"; deleted {version.adapter_path}"
                    except OSError as err:
                        removed = f"; can't delete {version.adapter_path}: {err.strerror or err}"
                print(f"discarded {version.name}{removed}")
                return 0
            if command == "restore":
                version = store.model_version(args.id)
                if not files_present(version):  # it would read "deleted" and lose the record of the discard
                    print(f"error: can't restore {version.name}: its adapter folder {version.adapter_path} is gone",
                          file=sys.stderr)
                    return 2
                version = store.restore_model_version(args.id)
                print(f"restored {version.name} ({version_state(version)})")
                return 0
            versions = store.model_versions()
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not versions:
        print("no model versions yet")
        return 0
    from lriad_desktop.cli.terminal_text import terminal_safe

    tolerance = _tolerance(args)
    names = {v.id: v.name for v in versions}
    rows = [("ID", "STATE", "NAME", "PARENT", "CREATED", "HELD-OUT VERDICT")]
    for v in versions:
        state = version_state(v) + (f" {v.discarded_at[:16]}" if v.discarded and v.discarded_at else "")
        rows.append((str(v.id), state, terminal_safe(v.name), terminal_safe(names.get(v.parent_id, "")),
                     v.created_at[:16], _verdict_word(v, tolerance)))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    return 0
