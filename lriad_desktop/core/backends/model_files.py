"""Checking model and adapter files before (and while) they load: one clear line per problem.

A safetensors file copied only part-way, a missing shard, or anything the libraries raise
while loading becomes a `ModelFolderError` that names the file and says what to do.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from lriad_desktop.core import plurals
log = logging.getLogger(__name__)


class ModelFolderError(Exception):
    """A model or adapter folder that can't be used; the message says why, for the user."""


# Bytes per element of the safetensors dtypes (the format's own list).
_SAFETENSORS_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
                            "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
                            "C64": 8}
_SAFETENSORS_MAX_HEADER = 100_000_000  # the format's own limit


def check_safetensors(path: str | os.PathLike) -> None:
    """Raise `ModelFolderError` when a safetensors file is cut short, padded or has a damaged header.

    Reads only the header (a few kB), so a folder picker can afford it: a copy interrupted
    mid-way is refused before minutes of loading, with the file named.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if n < 2 or n > min(_SAFETENSORS_MAX_HEADER, size - 8):
                raise ModelFolderError(f"{path} is not a complete safetensors file ({size:,} bytes): copy it again")
            header = json.loads(fh.read(n))
    except OSError as err:
        raise ModelFolderError(f"{path} can't be read: {err.strerror or err}") from None
    except (ValueError, UnicodeDecodeError):
        raise ModelFolderError(f"{path} has a damaged safetensors header: copy it again") from None
    end = 0
    try:
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            begin, stop = (int(v) for v in entry["data_offsets"])
            width = _SAFETENSORS_DTYPE_BYTES.get(str(entry["dtype"]))
            count = 1
            for dim in entry["shape"]:
                count *= int(dim)
            if begin < 0 or stop < begin or (width is not None and stop - begin != count * width):
                raise ModelFolderError(f"{path} has a damaged safetensors header (tensor {name}): copy it again")
            end = max(end, stop)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ModelFolderError(f"{path} has a damaged safetensors header: copy it again") from None
    expected = 8 + n + end
    if size != expected:
        what = "cut short" if size < expected else "longer than its header says"
        raise ModelFolderError(f"{path} is {what} ({size:,} of {expected:,} bytes): copy it again")


def one_line(err: BaseException) -> str:
    """The first line of a library's error, short enough for a status bar."""
    text = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "") or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def model_load_errors(what: str) -> Iterator[None]:
    """Turn whatever loading a model or adapter raises into a one-line `ModelFolderError` naming `what`.

    The libraries raise a dozen types for a damaged folder (OSError, SafetensorError, jinja's
    TemplateError, RuntimeError for mismatched sizes, the tokenizer's bare Exception); the full
    traceback goes to the debug log.
    """
    try:
        yield
    except ModelFolderError:
        raise
    except Exception as err:
        log.debug("%s failed", what, exc_info=True)
        text = str(err)
        if "size mismatch" in text or "ignore_mismatched_sizes" in text:
            reason = "its tensor sizes don't match the model (an adapter of another base model, or a wrong config.json)"
        elif "out of memory" in text.lower() or isinstance(err, MemoryError):
            reason = f"not enough memory ({one_line(err)})"
        elif isinstance(err, KeyError):
            reason = f"its configuration lacks or doesn't know the entry {err}"
        elif type(err).__name__ == "SafetensorError":
            reason = f"a weights file is damaged or incomplete ({one_line(err)})"
        else:
            reason = one_line(err)
        raise ModelFolderError(f"{what} can't be loaded: {reason}") from None


def check_weight_files(folder: Path, weights: Sequence[Path]) -> None:
    """Every shard a sharded model's index names is there, and every weights file is whole."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelFolderError(f"{index} can't be read: {one_line(err)}") from None
        missing = sorted(str(s) for s in shards if not (folder / str(s)).is_file())
        if missing:
            raise ModelFolderError(f"{folder} lacks {plurals.count(len(missing), 'weights file')} its index names, e.g. {missing[0]}")
    for weights_file in weights:
        check_safetensors(weights_file)
