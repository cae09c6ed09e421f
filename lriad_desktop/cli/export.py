"""`lriad export`: the File → Export menu on the command line, one format of the exporter registry at a time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    """Add `export` to the `lriad` sub-command parsers (its formats are the exporter registry's keys)."""
    from lriad_desktop.core.evaluation.export import EXPORTERS

    p = sub.add_parser("export", help="export the reviewed set of a review store (CSV, JSON, COCO, YOLO, VLM-R1)")
    p.add_argument("--db", type=Path, default=None, metavar="STORE",
                   help="the review store (default: the app's own, in the user data folder)")
    p.add_argument("--format", required=True, choices=list(EXPORTERS),
                   help="; ".join(f"{key}: {e.title}" for key, e in EXPORTERS.items()))
    p.add_argument("--out", required=True, type=Path, metavar="PATH",
                   help="the file to write (a folder for yolo)")


def existing_store(db: Path | None) -> Path | None:
    """The review store `--db` names (default: the app's own); None, with one line on stderr, when there is none."""
    from lriad_desktop.core.store.review_store import default_store_path

    path = Path(db) if db is not None else default_store_path()
    if not path.is_file():
        print(f"error: no review store at {path}", file=sys.stderr)
        return None
    return path


def cmd_export(args: argparse.Namespace) -> int:
    """Export; prints what was written. Exit 0, or 2 with one line when the store or the target can't be used."""
    from lriad_desktop.core.evaluation.export import export_reviewed
    from lriad_desktop.core.store.review_store import ReviewStore, StoreError

    db = existing_store(args.db)
    if db is None:
        return 2
    try:
        with ReviewStore.open(db) as store:
            result = export_reviewed(store, args.format, args.out)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only folder, a full disk, a file where a folder should be
        print(f"error: can't write {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(f"exported {result.summary()}")
    for line in result.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    return 0
