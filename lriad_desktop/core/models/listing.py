"""Which models this machine has, what each one is, and whether it fits: the bundled demo model,
the Hugging Face cache, the app's models folder and folders the user added. Plus the short
catalog of recommended models to download (`core.models.download` fetches them).

Qt-free; the Models dialog and `lriad models list|verify` both use it. Nothing here loads a
model: families and frames come from `config.json` and `lriad.json`, parameter counts from the
safetensors headers.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from lriad_desktop.core.backends.engine import ModelFolderError, validate_model_folder
from lriad_desktop.core.inspection.families import FAMILIES, read_model_type
from lriad_desktop.core.paths import bundled_model_dir, models_dir

DEMO_MODEL_NOTE = "demo model — trained on synthetic images only"
DOWNLOAD_MARKER = ".lriad-download.json"  # in a folder whose download has not finished
GIB = 1024 ** 3


class Source:
    """Where a listed model was found."""

    BUNDLED = "bundled"
    HF_CACHE = "hf-cache"
    MODELS_FOLDER = "models-folder"
    ADDED = "added"


@dataclass(frozen=True)
class ModelEntry:
    """One model folder as the Models dialog and `lriad models list` show it."""

    name: str  # the repo id for the cache and downloads, else the folder name
    path: Path
    source: str
    model_type: str = ""
    family: str = ""  # the family's name ("Qwen3-VL"), '' outside the table
    parameters: int | None = None
    size_bytes: int = 0
    frame: str = ""
    problem: str = ""  # '' when the folder can be used, else why not (one message)
    note: str = ""  # e.g. the demo model's note

    @property
    def usable(self) -> bool:
        return not self.problem

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        data["usable"] = self.usable
        return data


# --- facts about a folder -----------------------------------------------------------------
def safetensors_parameters(path: Path) -> int:
    """Number of values in a safetensors file, from its JSON header (the tensors are not read)."""
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length <= 0 or length > 100_000_000:
            raise ValueError(f"{path.name} has no valid safetensors header")
        header = json.loads(fh.read(length))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info.get("shape", []):
            count *= int(dim)
        total += count
    return total


def count_parameters(folder: Path) -> int | None:
    """Parameters of all `*.safetensors` in `folder` (None when a header can't be read)."""
    try:
        files = sorted(Path(folder).glob("*.safetensors"))
        return sum(safetensors_parameters(f) for f in files) if files else None
    except (OSError, ValueError, struct.error):
        return None


def folder_size(folder: Path) -> int:
    """Bytes on disk of the files in `folder` (symlinks into a cache count at their target's size)."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .cache/huggingface metadata, partial downloads
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def describe_folder(path: Path, source: str, name: str = "", size_bytes: int | None = None) -> ModelEntry:
    """A listing row for one folder: what it holds, or why it can't be used."""
    path = Path(path)
    name = name or path.name
    marker = path / DOWNLOAD_MARKER
    size = folder_size(path) if size_bytes is None else size_bytes
    if marker.is_file():
        return ModelEntry(name, path, source, size_bytes=size,
                          problem="download not finished: resume it in Model → Models…, or `lriad models download`")
    try:
        info = validate_model_folder(path)
    except ModelFolderError as err:
        try:
            model_type = read_model_type(path)
        except (OSError, ValueError):
            model_type = ""
        family = FAMILIES.get(model_type)
        return ModelEntry(name, path, source, model_type, family.name if family else "", None, size,
                          problem=str(err))
    note = DEMO_MODEL_NOTE if source == Source.BUNDLED else ""
    return ModelEntry(name, path, source, info.model_type, info.family.name if info.family else info.model_type,
                      count_parameters(path), size, info.geometry.frame.value, "", note)


def _model_folders_in(folder: Path) -> list[Path]:
    if (folder / "config.json").is_file() or (folder / DOWNLOAD_MARKER).is_file():
        return [folder]
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and ((p / "config.json").is_file() or (p / DOWNLOAD_MARKER).is_file()))
    except OSError:
        return []


# --- the Hugging Face cache -----------------------------------------------------------------
def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read now (not at import): `HF_HUB_CACHE`, else `HF_HOME/hub`,
    else `~/.cache/huggingface/hub` (the same rule as huggingface_hub's constants)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def scan_hf_cache(cache_dir: Path | None = None) -> list[ModelEntry]:
    """Vision-language models in the Hugging Face cache (`huggingface_hub.scan_cache_dir`), by repo id.

    Each repo is listed at the revision `main` points to (else its newest). Text-only models and
    other repo types in the cache are left out.
    """
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = Path(cache_dir) if cache_dir is not None else hf_cache_dir()
    try:
        info = scan_cache_dir(cache)
    except (CacheNotFound, OSError, ValueError):
        return []
    entries = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revisions = sorted(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified), reverse=True)
        snapshot = Path(revisions[0].snapshot_path)
        try:
            model_type = read_model_type(snapshot)
        except (OSError, ValueError):
            continue
        if model_type not in FAMILIES and not (snapshot / "lriad.json").is_file():
            continue
        entries.append(describe_folder(snapshot, Source.HF_CACHE, repo.repo_id, revisions[0].size_on_disk))
    return entries


def list_models(added: Sequence[str | os.PathLike] = (), cache_dir: Path | None = None,
                own_folder: Path | None = None) -> list[ModelEntry]:
    """Every model this app can see: bundled demo, HF cache, the app's models folder, added folders.

    A folder found twice (an added folder inside the models folder) is listed once.
    """
    entries: list[ModelEntry] = []
    bundled = bundled_model_dir()
    if bundled.is_dir():
        entries.append(describe_folder(bundled, Source.BUNDLED, bundled.name))
    entries += scan_hf_cache(cache_dir)
    own = Path(own_folder) if own_folder is not None else models_dir()
    for folder in _model_folders_in(own) if own.is_dir() else []:
        entries.append(describe_folder(folder, Source.MODELS_FOLDER, _downloaded_name(folder)))
    for item in added:
        folder = Path(item).expanduser()
        found = _model_folders_in(folder) if folder.is_dir() else [folder]
        for path in found:
            entries.append(describe_folder(path, Source.ADDED) if path.exists() else
                           ModelEntry(path.name, path, Source.ADDED, problem=f"Model folder not found: {path}"))
    seen, unique = set(), []
    for e in entries:
        key = os.path.realpath(e.path)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique


def _downloaded_name(folder: Path) -> str:
    """A downloaded folder carries its repo id (`lriad_download.json`); others show their folder name."""
    for name in (DOWNLOAD_MARKER, "lriad_download.json"):
        try:
            return str(json.loads((folder / name).read_text(encoding="utf-8"))["repo_id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return folder.name


# --- does it fit this machine ---------------------------------------------------------------
@dataclass(frozen=True)
class Machine:
    """What this machine offers a model: the GPU (if any) and the main memory."""

    gpu_name: str = ""
    gpu_free_bytes: int = 0
    gpu_total_bytes: int = 0
    ram_total_bytes: int = 0

    @classmethod
    def detect(cls) -> "Machine":
        """This machine (imports torch to ask CUDA; call off the UI thread)."""
        ram = 0
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            pass
        try:
            import torch

            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                return cls(torch.cuda.get_device_name(), int(free), int(total), ram)
        except (ImportError, RuntimeError):
            pass
        return cls(ram_total_bytes=ram)


def memory_needed(parameters: int, on_gpu: bool = True) -> int:
    """Estimated memory to inspect with a model: bf16 weights on a GPU (fp32 on the CPU), +20 %, +1 GiB
    for the activations of one image at the 1280-token budget. An estimate, not a measurement."""
    per_value = 2 if on_gpu else 4
    return int(parameters * per_value * 1.2 + GIB)


@dataclass(frozen=True)
class Fit:
    """Whether a model fits a machine, and a line saying so."""

    fits: bool | None  # None: unknown (no parameter count or no memory figure)
    needed_bytes: int
    text: str


def fit_on(parameters: int | None, machine: Machine) -> Fit:
    """Estimated memory against what the machine has (free GPU memory; else main memory, on the CPU)."""
    if not parameters:
        return Fit(None, 0, "unknown (no parameter count)")
    if machine.gpu_total_bytes:
        need = memory_needed(parameters, on_gpu=True)
        ok = need <= machine.gpu_free_bytes
        return Fit(ok, need, f"{'fits' if ok else 'too big'}: needs ~{need / GIB:.1f} GB, "
                             f"{machine.gpu_free_bytes / GIB:.1f} GB free on {machine.gpu_name}")
    need = memory_needed(parameters, on_gpu=False)
    if not machine.ram_total_bytes:
        return Fit(None, need, f"no GPU: needs ~{need / GIB:.1f} GB of memory on the CPU")
    ok = need <= machine.ram_total_bytes * 0.8
    slow = " (slow for a model over 1 B parameters)" if parameters > 1_000_000_000 else ""
    return Fit(ok, need, f"no GPU: {'runs' if ok else 'too big'} on the CPU, needs ~{need / GIB:.1f} GB of "
                         f"{machine.ram_total_bytes / GIB:.0f} GB{slow if ok else ''}")


# --- the catalog -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogModel:
    """A recommended model to download. Figures are as published (see `source`), rounded."""

    repo_id: str
    family: str  # model_type
    parameters: int
    download_bytes: int
    licence: str
    source: str

    @property
    def gpu_bytes(self) -> int:
        return memory_needed(self.parameters, on_gpu=True)


def _gb(value: float) -> int:
    return int(value * 1e9)


# Download sizes are the bf16 safetensors (2 bytes a parameter) unless a file listing was at hand.
CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel("Qwen/Qwen3-VL-2B-Instruct", "qwen3_vl", 2_130_000_000, _gb(4.3), "Apache-2.0",
                 "parameters from the model page; size = 2 bytes a parameter"),
    CatalogModel("Qwen/Qwen3-VL-4B-Instruct", "qwen3_vl", 4_440_000_000, _gb(8.9), "Apache-2.0",
                 "4.44 B parameters and Apache 2.0 as published for Qwen3-VL-4B; size = 2 bytes a parameter"),
    CatalogModel("Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl", 8_770_000_000, _gb(17.5), "Apache-2.0",
                 "parameters from the model page; size = 2 bytes a parameter"),
    CatalogModel("Qwen/Qwen2.5-VL-3B-Instruct", "qwen2_5_vl", 3_750_000_000, _gb(7.5),
                 "Qwen Research License (non-commercial)",
                 "two shards of 3.98 + 3.53 GB in its file listing; licence per QwenLM/Qwen3-VL issue #963"),
    CatalogModel("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl", 8_290_000_000, _gb(16.6), "Apache-2.0",
                 "parameters from the model page; Apache 2.0 per QwenLM/Qwen3-VL issue #963"),
    CatalogModel("Qwen/Qwen3.5-2B", "qwen3_5", 2_000_000_000, _gb(4.5), "Apache-2.0",
                 "'2B params' on the model page; the small Qwen3.5 models are Apache 2.0 (release notes)"),
    CatalogModel("Qwen/Qwen3.5-4B", "qwen3_5", 4_700_000_000, _gb(9.4), "Apache-2.0",
                 "'5B params' (language model + vision) on the model page; size = 2 bytes a parameter"),
)

# What a download fetches: weights, configs, tokenizer and processor files, the licence and card.
DOWNLOAD_PATTERNS: tuple[str, ...] = (
    "*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json", "tokenizer.json",
    "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json",
    "chat_template.json", "chat_template.jinja", "preprocessor_config.json", "processor_config.json",
    "video_preprocessor_config.json", "lriad.json", "LICENSE", "LICENSE.*", "README.md",
)


def catalog_entry(repo_id: str) -> CatalogModel | None:
    """The catalog's entry for a repo id, if it has one."""
    return next((c for c in CATALOG if c.repo_id.lower() == repo_id.lower()), None)


def format_bytes(n: float) -> str:
    """'1.2 GB', '340 MB', '12 kB' (decimal units, as download sizes are published)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def format_parameters(n: int | None) -> str:
    if not n:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def entries_as_rows(entries: Iterable[ModelEntry], machine: Machine | None = None) -> list[dict]:
    """Listing rows as dicts (for `--json`), each with its fit on `machine` when given."""
    rows = []
    for e in entries:
        row = e.to_dict()
        if machine is not None:
            fit = fit_on(e.parameters, machine)
            row.update(fits=fit.fits, memory_needed_bytes=fit.needed_bytes, fit=fit.text)
        rows.append(row)
    return rows


# --- verification -------------------------------------------------------------------------------
SMOKE_IMAGE = "washer_scratch.jpg"


@dataclass(frozen=True)
class SmokeResult:
    """A model folder checked and tried once on a bundled sample image."""

    ok: bool
    text: str  # one line for the user
    seconds: float = 0.0
    verdict: str = ""


def smoke_inspect(folder: Path, device: str = "auto", max_new_tokens: int = 64) -> SmokeResult:
    """Validate `folder`, load it and inspect one bundled sample image: does the model run here?

    An answer outside the grammar still passes (the model ran; a model not fine-tuned for the app
    may not follow it yet); a folder that won't validate or load fails with the reason.
    """
    import time

    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.inspection.images import load_image
    from lriad_desktop.core.paths import sample_images_dir

    start = time.perf_counter()
    try:
        inspector = Inspector(folder, device=device, max_new_tokens=max_new_tokens).load()
        sample = sample_images_dir() / SMOKE_IMAGE
        finding = inspector.inspect(load_image(sample).image, "washer", str(sample))
    except ModelFolderError as err:
        return SmokeResult(False, str(err), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    verdict = finding.verdict.value
    said = (f"its answer on {SMOKE_IMAGE} is {verdict}" if verdict != "unparsed" else
            f"its answer on {SMOKE_IMAGE} is not in the app's grammar yet ({finding.parse_error})")
    return SmokeResult(True, f"✓ loads on {inspector.device} and inspects: {said} ({seconds:.1f} s)", seconds,
                       verdict)
