"""The shift report: what was inspected in a period, as one self-contained HTML file.

`gather_report(store, since, until)` reads the review store: each image inspected in the period with its
newest finding of the period and its current review. The report counts verdicts (the model's, and the
inspectors' where they reviewed), defect types, model versions and reviewers, and shows every image called
defective or flagged by an inspector as a thumbnail with its boxes (the model's red, the inspector's blue).
`render_html` inlines everything (styles, thumbnails as JPEG data URIs): the file opens offline, mails as
one attachment, and prints. `write_report` writes it atomically (a crash leaves the old file or the new).
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time as day_time, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

from lriad_desktop.core.atomic_files import FileWriteError, write_error_message, write_text_atomically
from lriad_desktop.core.inspection.finding import Defect, Finding, Verdict
from lriad_desktop.core.inspection.images import ImageLoadError, load_image
from lriad_desktop.core.store.review import ReviewKind, ReviewRecord, effective_defects
from lriad_desktop.core.store.review_store import ImageRecord, ReviewStore

MAX_THUMBNAILS = 200  # past this the report lists the rest by name (the file stays a few MB)
THUMB_SIDE = 360
MODEL_BOX = (255, 69, 58)
INSPECTOR_BOX = (10, 132, 255)
_VERDICT_NAMES = {"anomalous": "defective", "normal": "normal", "unparsed": "unreadable answer"}


class ReportError(Exception):
    """The report can't be made or written (a period that is not a time, a folder that can't be written)."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """When a period starts: `8h`, `30m`, `2d` (ago), `06:00` (the last time the clock showed it), `today`,
    `yesterday`, or an ISO date or date-time (local time unless it says otherwise). Raises ReportError."""
    now = (now or datetime.now().astimezone()).astimezone()
    value = text.strip().lower()
    relative = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhd])", value)
    if relative:
        units = {"m": "minutes", "h": "hours", "d": "days"}
        return now - timedelta(**{units[relative.group(2)]: float(relative.group(1))})
    if value in ("today", "yesterday"):
        midnight = datetime.combine(now.date(), day_time(), now.tzinfo)
        return midnight - timedelta(days=1) if value == "yesterday" else midnight
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if clock and int(clock.group(1)) < 24 and int(clock.group(2)) < 60:
        start = now.replace(hour=int(clock.group(1)), minute=int(clock.group(2)), second=0, microsecond=0)
        return start - timedelta(days=1) if start > now else start  # a night shift begun before midnight
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"'{text}' is not a time: use 8h, 30m, 2d, 06:00, today, yesterday or "
                          f"2026-03-02T06:00") from None
    return parsed.astimezone() if parsed.tzinfo is None else parsed


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ReportedImage:
    """One image of the period: its record, its newest finding of the period, its current review."""

    image: ImageRecord
    finding: Finding
    inspected_at: str
    review: ReviewRecord | None

    @property
    def verdict(self) -> Verdict:
        """The inspector's verdict where the image was reviewed, else the model's."""
        return self.review.review.verdict if self.review is not None else self.finding.verdict

    @property
    def defects(self) -> tuple[Defect, ...]:
        return effective_defects(self.finding, self.review.review if self.review else None)

    @property
    def flagged(self) -> bool:
        return self.review is not None and self.review.review.kind is ReviewKind.FLAG


@dataclass(frozen=True)
class ShiftReport:
    """Everything the report shows, counted."""

    since: datetime
    until: datetime
    images: tuple[ReportedImage, ...]
    store_path: str = ""
    model_verdicts: Counter = field(default_factory=Counter)
    verdicts: Counter = field(default_factory=Counter)
    defect_types: Counter = field(default_factory=Counter)
    model_versions: Counter = field(default_factory=Counter)
    reviewers: Counter = field(default_factory=Counter)
    reviews: Counter = field(default_factory=Counter)  # accept / flag / none

    @property
    def shown(self) -> list[ReportedImage]:
        """The images the report shows as thumbnails: called defective (by the model or the inspector) or
        flagged."""
        return [r for r in self.images if r.flagged or r.verdict is Verdict.ANOMALOUS
                or r.finding.verdict is Verdict.ANOMALOUS]

    def as_dict(self) -> dict:
        """The counts as JSON-ready data (`lriad report --format json`)."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "images": len(self.images),
                "model_verdicts": dict(self.model_verdicts), "verdicts": dict(self.verdicts),
                "defect_types": dict(self.defect_types), "model_versions": dict(self.model_versions),
                "reviewers": dict(self.reviewers), "reviews": dict(self.reviews),
                "shown": [r.image.path for r in self.shown]}


def gather_report(store: ReviewStore, since: datetime, until: datetime | None = None) -> ShiftReport:
    """The report of the period `[since, until)` (until: now) from the review store."""
    to_now = until is None
    until = until or datetime.now().astimezone()
    if until <= since:
        raise ReportError(f"the period ends ({until:%Y-%m-%d %H:%M}) before it starts ({since:%Y-%m-%d %H:%M})")
    # the store's times are in whole milliseconds: "until now" takes in what was recorded this millisecond
    end = _utc_iso(until + timedelta(milliseconds=1) if to_now else until)
    images = tuple(ReportedImage(image, record.finding, record.created_at, store.current_review(image.id))
                   for image, record in store.inspected_between(_utc_iso(since), end))
    model_verdicts, verdicts, types, versions, reviewers, reviews = (Counter() for _ in range(6))
    for r in images:
        model_verdicts[r.finding.verdict.value] += 1
        verdicts[r.verdict.value] += 1
        versions[r.finding.model_version or "unknown"] += 1
        for label in {d.label for d in r.defects}:  # images per type: an image with 3 cracks is 1 crack image
            types[label] += 1
        if r.review is None:
            reviews["none"] += 1
        else:
            reviews[r.review.review.kind.value] += 1
            reviewers[r.review.reviewer] += 1
    return ShiftReport(since, until, images, str(store.path), model_verdicts, verdicts, types, versions, reviewers,
                       reviews)


# --- thumbnails ---------------------------------------------------------------------------------------------
def _thumbnail(item: ReportedImage) -> str:
    """A JPEG data URI of the image with its boxes, or '' when the image can't be read any more."""
    try:
        image = load_image(item.image.path).image
    except (ImageLoadError, OSError):
        return ""
    scale = THUMB_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
    else:
        scale = 1.0
    draw = ImageDraw.Draw(image)
    model = item.finding.defects if item.finding.verdict is Verdict.ANOMALOUS else ()
    layers = [(model, MODEL_BOX)]
    if item.flagged:
        layers.append((item.defects, INSPECTOR_BOX))
    for defects, colour in layers:
        for d in defects:
            if d.box is not None:
                b = d.box
                draw.rectangle([b.x1 * scale, b.y1 * scale, b.x2 * scale, b.y2 * scale], outline=colour, width=3)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --- HTML ---------------------------------------------------------------------------------------------------
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:28px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px}.meta{color:#6e6e73;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}.card{border:1px solid #d2d2d7;border-radius:8px;
padding:10px 14px;min-width:110px}.card b{display:block;font-size:22px}.bad b{color:#d70015}.ok b{color:#248a3d}
table{border-collapse:collapse;margin-right:28px;display:inline-table;vertical-align:top}
td,th{border-bottom:1px solid #e5e5ea;padding:4px 10px;text-align:left}td.n{text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;width:360px;border:1px solid #d2d2d7;border-radius:8px;
overflow:hidden}figure img{display:block;max-width:360px;margin:0 auto;background:#f5f5f7}.gone{height:120px;display:flex;
align-items:center;justify-content:center;background:#f5f5f7;color:#6e6e73}figcaption{padding:8px 10px;font-size:12px}
.flag{color:#0a6fd6;font-weight:600}.key span{display:inline-block;width:12px;height:3px;margin:0 4px 3px 10px}
@media print{figure{break-inside:avoid}}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(title: str, counts: Counter, names: dict[str, str] | None = None) -> str:
    if not counts:
        return f"<table><tr><th>{_esc(title)}</th></tr><tr><td>none</td></tr></table>"
    rows = "".join(f"<tr><td>{_esc((names or {}).get(k, k))}</td><td class=n>{v}</td></tr>"
                   for k, v in counts.most_common())
    return f"<table><tr><th>{_esc(title)}</th><th class=n>images</th></tr>{rows}</table>"


def _local(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _figure(item: ReportedImage) -> str:
    uri = _thumbnail(item)
    picture = (f'<img src="{uri}" alt="{_esc(Path(item.image.path).name)}">' if uri
               else '<div class="gone">image no longer at this path</div>')
    f = item.finding
    model = _VERDICT_NAMES.get(f.verdict.value, f.verdict.value)
    labels = ", ".join(sorted({d.label for d in f.defects})) if f.verdict is Verdict.ANOMALOUS else ""
    lines = [f"<b>{_esc(Path(item.image.path).name)}</b>",
             f"model: {_esc(model)}" + (f" · {_esc(labels)}" if labels else "")]
    score = getattr(f, "anomaly_score", None)
    if score is not None:
        lines.append(f"anomaly score {score:.2f}")
    if f.tiling is not None:
        lines.append(f"inspected in {f.tiling.columns} x {f.tiling.rows} tiles")
    if item.review is not None:
        rv = item.review.review
        mine = ", ".join(sorted({d.label for d in rv.defects})) or ("no defect" if rv.verdict is Verdict.NORMAL else "")
        what = (f'<span class="flag">flagged: {_esc(_VERDICT_NAMES[rv.verdict.value])}'
                + (f" · {_esc(mine)}" if mine else "") + "</span>") if item.flagged else "accepted"
        lines.append(f"{what} by {_esc(item.review.reviewer)}" + (f" — “{_esc(rv.note)}”" if rv.note else ""))
    else:
        lines.append("not reviewed")
    lines.append(f"{_esc(f.model_version)} · {_esc(_local(item.inspected_at))}")
    lines.append(f'<span class="meta">{_esc(item.image.path)}</span>')
    return f"<figure>{picture}<figcaption>{'<br>'.join(lines)}</figcaption></figure>"


def render_html(report: ShiftReport, title: str = "Shift report") -> str:
    """The report as one HTML document with everything inlined."""
    n = len(report.images)
    v, rv = report.verdicts, report.reviews
    cards = [("inspected", n, ""), ("defective", v.get("anomalous", 0), "bad"), ("normal", v.get("normal", 0), "ok"),
             ("unreadable", v.get("unparsed", 0), ""), ("accepted", rv.get("accept", 0), ""),
             ("flagged", rv.get("flag", 0), ""), ("not reviewed", rv.get("none", 0), "")]
    card_html = "".join(f'<div class="card {cls}"><b>{count}</b>{_esc(name)}</div>' for name, count, cls in cards)
    shown = report.shown
    figures = "".join(_figure(item) for item in shown[:MAX_THUMBNAILS])
    rest = shown[MAX_THUMBNAILS:]
    more = ("<p>And " + str(len(rest)) + " more: " + ", ".join(_esc(Path(r.image.path).name) for r in rest) + "</p>"
            if rest else "")
    gallery = (f'<p class="key">Boxes: <span style="background:rgb{MODEL_BOX}"></span>the model\'s'
               f'<span style="background:rgb{INSPECTOR_BOX}"></span>the inspector\'s</p><div class="grid">{figures}'
               f"</div>{more}") if shown else "<p>No image was called defective or flagged in this period.</p>"
    period = f"{report.since.astimezone():%Y-%m-%d %H:%M} to {report.until.astimezone():%Y-%m-%d %H:%M}"
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{_esc(title)} · {_esc(period)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1><div class=meta>{_esc(period)} · made {generated} by LR-IAD Desktop from "
        f"{_esc(report.store_path)}</div>"
        f"<div class=cards>{card_html}</div>"
        "<p class=meta>Verdicts are the inspector's where an image was reviewed, else the model's. Model verdicts: "
        + ", ".join(f"{_esc(_VERDICT_NAMES.get(k, k))} {c}" for k, c in report.model_verdicts.most_common())
        + ".</p>"
        + _table("Defect type", report.defect_types) + _table("Model version", report.model_versions)
        + _table("Reviewer", report.reviewers)
        + f"<h2>Defective and flagged images ({len(shown)})</h2>{gallery}</body></html>\n"
    )


def write_report(text: str, path: str | os.PathLike) -> Path:
    """Write the report atomically (the last good file stays on failure); raises ReportError with the reason."""
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomically(target, text)
    except OSError as err:  # FileWriteError keeps the OS's error as its context
        cause = err.__context__ if isinstance(err, FileWriteError) and err.__context__ else err
        raise ReportError(write_error_message(target, cause, "write the report to")) from None
