"""`lriad models list|download|verify`: the Models dialog's work on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lriad_desktop.core.devices import DEVICE_CHOICES


def add_parser(sub) -> None:
    """Add `models` and its three commands to the `lriad` sub-command parsers."""
    p = sub.add_parser("models", help="list, download and verify models (the Models dialog on the command line)")
    msub = p.add_subparsers(dest="models_command", required=True)
    p_list = msub.add_parser("list", help="models found here: bundled demo, Hugging Face cache, models folder, "
                                          "added folders")
    p_list.add_argument("--folder", action="append", type=Path, default=[],
                        help="also look in this folder (or folder of model folders); repeatable")
    p_list.add_argument("--json", action="store_true", help="one JSON array (for scripts)")
    p_list.add_argument("--no-fit", action="store_true", help="skip the GPU check (it imports torch)")
    p_dl = msub.add_parser("download", help="download a model from the Hugging Face hub (no REPO: the catalog)")
    p_dl.add_argument("repo", nargs="?", default=None, help="repo id, e.g. Qwen/Qwen3-VL-4B-Instruct")
    p_dl.add_argument("--to", type=Path, default=None, help="folder to download into (default: the app's models "
                                                              "folder / ORG--NAME)")
    p_dl.add_argument("--no-verify", action="store_true", help="skip the one-image smoke inspection at the end")
    p_dl.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p_dl.add_argument("--json", action="store_true", help="progress and result as JSON lines")
    p_ver = msub.add_parser("verify", help="check a model folder and inspect one sample image with it")
    p_ver.add_argument("model", help="a model folder, or a name from `lriad models list`")
    p_ver.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p_ver.add_argument("--json", action="store_true")


def _settings_folders() -> tuple[str, ...]:
    from lriad_desktop.core.settings import load_settings_warned

    return load_settings_warned().model_folders


def cmd_list(args: argparse.Namespace) -> int:
    from lriad_desktop.core.models.listing import Machine, entries_as_rows, fit_on, format_bytes, format_parameters, list_models
    from lriad_desktop.cli.terminal_text import terminal_safe

    entries = list_models(list(_settings_folders()) + [str(f) for f in args.folder])
    machine = None if args.no_fit else Machine.detect()
    if args.json:
        print(json.dumps(entries_as_rows(entries, machine), indent=2))
        return 0
    print("NAME\tFAMILY\tPARAMETERS\tSIZE\tFRAME\tFITS\tPATH")
    for e in entries:
        fit = fit_on(e.parameters, machine).text if machine and e.usable else ("-" if e.usable else e.problem)
        family = e.family or e.model_type or "?"
        name = f"{e.name} ({e.note})" if e.note else e.name
        cells = (name, family, format_parameters(e.parameters), format_bytes(e.size_bytes), e.frame or "-", fit,
                 e.path)
        print("\t".join(terminal_safe(cell) for cell in cells))
    return 0


def _print_catalog() -> int:
    from lriad_desktop.core.inspection.families import FAMILIES
    from lriad_desktop.core.models.listing import CATALOG, format_bytes, format_parameters

    print("Recommended models (lriad models download REPO):")
    for c in CATALOG:
        print(f"  {c.repo_id:32} {FAMILIES[c.family].name:11} {format_parameters(c.parameters):>7} params  "
              f"download ~{format_bytes(c.download_bytes):>8}  GPU ~{c.gpu_bytes / 1024 ** 3:4.1f} GB  {c.licence}")
    print("Any other repo id of a supported family works too. Figures are approximate (see the README).")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from lriad_desktop.core.models.download import DownloadCancelled, DownloadError, download_model

    if not args.repo:
        return _print_catalog()

    def progress(p) -> None:
        if args.json:
            print(json.dumps({"event": "progress", "file": p.file, "done_bytes": p.done_bytes,
                              "total_bytes": p.total_bytes, "bytes_per_s": round(p.bytes_per_s),
                              "eta_s": None if p.eta_s is None else round(p.eta_s, 1)}), flush=True)
        else:
            print(f"\r{p.text():60}", end="", file=sys.stderr, flush=True)

    try:
        folder = download_model(args.repo, args.to, on_progress=progress)
    except DownloadCancelled:
        print("\ncancelled: run the same command again to carry on", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to carry on from what was received", file=sys.stderr)
        return 130
    except DownloadError as err:
        print(("" if args.json else "\n") + f"error: {err}", file=sys.stderr)
        return 2
    if not args.json:
        print(file=sys.stderr)
    return _verify(folder, args.device, args.json, skip=args.no_verify)


def _verify(folder: Path, device: str, as_json: bool, skip: bool = False) -> int:
    from lriad_desktop.core.models.listing import smoke_inspect

    result = smoke_inspect(folder, device=device) if not skip else None
    if as_json:
        print(json.dumps({"event": "done", "folder": str(folder), "verified": None if result is None else result.ok,
                          "message": "" if result is None else result.text}), flush=True)
    else:
        print(f"{folder}: {'downloaded (not verified)' if result is None else result.text}")
    return 0 if result is None or result.ok else 2


def cmd_verify(args: argparse.Namespace) -> int:
    from lriad_desktop.core.models.listing import list_models

    folder = Path(args.model).expanduser()
    if not folder.exists():
        named = [e for e in list_models(_settings_folders()) if e.name == args.model]
        if not named:
            print(f"error: {args.model} is neither a folder nor a model name from `lriad models list`",
                  file=sys.stderr)
            return 2
        folder = named[0].path
    return _verify(folder, args.device, args.json)


def cmd_models(args: argparse.Namespace) -> int:
    """Dispatch `lriad models …`."""
    return {"list": cmd_list, "download": cmd_download, "verify": cmd_verify}[args.models_command](args)
