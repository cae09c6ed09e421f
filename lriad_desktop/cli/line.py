"""`lriad watch` (a hot folder inspected as images land, verdicts over MQTT) and `lriad report` (the shift
report) on the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable

from lriad_desktop.core.line.hot_folder import DEFAULT_SETTLE_S
from lriad_desktop.cli.terminal_text import terminal_safe


def add_parsers(sub, model_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `watch` and `report` to the `lriad` sub-command parsers (`model_options`: the model and server
    options every inspecting command takes)."""
    p = sub.add_parser("watch", help="inspect images as they land in a folder (a camera's output), record them, "
                                     "publish each finding over MQTT, optionally move them; Ctrl+C stops")
    p.add_argument("folder", type=Path, help="the folder to watch (and its sub-folders)")
    p.add_argument("--move-to", type=Path, default=None, metavar="DIR",
                   help="move each inspected image here (its sub-folder kept; names never overwritten)")
    p.add_argument("--mqtt", default=None, metavar="HOST:PORT", help="publish one JSON message per finding to this "
                                                                      "MQTT broker (QoS 1)")
    p.add_argument("--topic", default="lriad", metavar="PREFIX",
                   help="topic prefix: findings go to PREFIX/finding, online/offline to PREFIX/status "
                        "(default lriad)")
    p.add_argument("--db", type=Path, default=None, help="review store (default: the app's)")
    p.add_argument("--settle", type=float, default=DEFAULT_SETTLE_S, metavar="S",
                   help=f"a file is complete once its size stayed the same this long (default {DEFAULT_SETTLE_S} s)")
    p.add_argument("--polling", action="store_true",
                   help="poll the folder instead of file-system events (network shares written by other machines)")
    model_options(p)

    r = sub.add_parser("report", help="the shift report: counts by verdict and defect type, defective and flagged "
                                      "images with their boxes, model versions, reviewers")
    r.add_argument("--since", required=True, metavar="WHEN",
                   help="start of the period: 8h, 30m, 2d (ago), 06:00, today, yesterday or 2026-03-02T06:00")
    r.add_argument("--until", default=None, metavar="WHEN", help="end of the period (default: now)")
    r.add_argument("--format", choices=["html", "json"], default="html")
    r.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="where to write it (default: shift-report-DATE-TIME.html here; json: stdout)")
    r.add_argument("--title", default="Shift report")
    r.add_argument("--db", type=Path, default=None, help="review store (default: the app's)")


def _finding_line(watched, as_json: bool) -> str:  # noqa: ANN001 - a core.line.watch.WatchedImage
    finding = watched.finding
    if as_json:
        data = finding.to_dict()
        if watched.moved_to:
            data["moved_to"] = watched.moved_to
        return json.dumps(data, ensure_ascii=False)
    labels = "; ".join(d.label + ("" if d.box is None else " [" + ", ".join(f"{v:.0f}" for v in d.box.as_list()) + "]")
                       for d in finding.defects) or "-"
    where = f"\t-> {terminal_safe(watched.moved_to)}" if watched.moved_to else ""
    return (f"{terminal_safe(watched.path)}\t{finding.verdict.value}\t{terminal_safe(labels)}\t"
            f"{finding.timings.get('total_ms', 0):.0f} ms{where}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def cmd_watch(args: argparse.Namespace, make_backend: Callable[[argparse.Namespace], object]) -> int:
    """`lriad watch FOLDER`: runs until Ctrl+C (or SIGTERM); one finding per line on stdout, notes on stderr."""
    from lriad_desktop.core.line.journal import LineJournal
    from lriad_desktop.core.line.publishing import FindingPublisher, parse_broker
    from lriad_desktop.core.store.review_store import default_store_path
    from lriad_desktop.core.line.watch import FolderWatch

    def note(line: str) -> None:
        print(terminal_safe(line), file=sys.stderr, flush=True)

    db = args.db or default_store_path()
    broker = parse_broker(args.mqtt, args.topic) if args.mqtt else None
    # the MQTT outbox and the files that could not be inspected, for this folder's watch
    journal = LineJournal.beside(db, str(args.folder.expanduser().resolve()))
    publisher = FindingPublisher(broker, journal=journal) if broker is not None else None
    watch = FolderWatch(make_backend(args), db, args.folder,
                        object_name=args.object, move_to=args.move_to, publisher=publisher, settle_s=args.settle,
                        polling=args.polling, batch_size=args.batch_size, journal=journal)
    failures = inspected = 0

    def on_image(watched) -> None:  # noqa: ANN001 - a core.line.watch.WatchedImage
        nonlocal failures, inspected
        if watched.skipped:
            note(f"{watched.path}: {watched.skipped}" + (f", moved to {watched.moved_to}" if watched.moved_to else ""))
        elif watched.finding is None:
            failures += 1
            if args.json:
                print(json.dumps({"image_path": watched.path, "error": watched.error}), flush=True)
            note(f"error: {watched.path}: {watched.error}")
        else:
            inspected += 1
            print(_finding_line(watched, args.json), flush=True)

    previous = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop ends it as Ctrl+C does
    try:
        watch.run(on_image, note)  # starts the publisher once it holds the folder's lock
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if publisher is not None:
            left = publisher.close()
            for line in publisher.notes():
                note(line)
            if left:
                note(f"MQTT: {left} finding(s) were not delivered (the broker is gone); they are kept in "
                     f"{journal.path} and sent when the watch starts again")
        journal.close()
    note(f"stopped: {inspected} image(s) inspected, {failures} could not be")
    return 1 if failures else 0


def cmd_report(args: argparse.Namespace) -> int:
    """`lriad report --since WHEN`: the shift report as HTML (or the counts as JSON)."""
    from lriad_desktop.core.line.shift_report import gather_report, parse_since, render_html, write_report
    from lriad_desktop.core.store.review_store import ReviewStore, default_store_path

    since = parse_since(args.since)
    until = parse_since(args.until) if args.until else None
    with ReviewStore.open(args.db or default_store_path()) as store:
        report = gather_report(store, since, until)
        if args.format == "json":
            text = json.dumps(report.as_dict(), ensure_ascii=False, indent=2)
            if args.out is None:
                print(text)
                return 0
        else:
            text = render_html(report, args.title)
    out = args.out or Path(f"shift-report-{datetime.now():%Y%m%d-%H%M}.html")
    path = write_report(text, out)
    print(f"{path}: {len(report.images)} images, {len(report.shown)} defective or flagged", flush=True)
    return 0
