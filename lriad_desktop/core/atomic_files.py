"""Every file the app writes for the user goes through here: written whole or not at all.

A file is written to a hidden temp file in the same folder, flushed and synced, then renamed over
the target (`atomic_file`, `write_text_atomically`); a folder export is filled in a hidden staging
folder and its entries swapped in at the end (`atomic_folder`). A failure (a full disk, a read-only
folder, a crash) leaves the last good file as it was and removes the temp file; the error is a
`FileWriteError` whose text is one line naming the path ("Not enough disk space to write
/x/reviews.csv").

A target that exists and is no regular file or folder (a pipe, `/dev/stdout`, a device) can't be
replaced, so it is written in place.

Each staging folder (`.NAME.*`) is held under an OS lock (`core.file_locks`) while its export lives, taken
before the folder exists; the next export of NAME removes those whose lock nobody holds: what a killed
export left, never what a running one is filling.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from lriad_desktop.core.file_locks import RunLock

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# How libraries that don't raise OSError (safetensors' Rust writer) spell a full disk.
_DISK_FULL_TEXT = ("no space left on device", "storagefull", "os error 28", "disk quota exceeded")


class FileWriteError(OSError):
    """A user file or folder couldn't be written; `str()` is one line naming it. The previous one is untouched."""

    def __init__(self, path: str | os.PathLike, cause: BaseException, what: str = "write") -> None:
        code = errno.ENOSPC if is_disk_full(cause) else getattr(cause, "errno", None)
        self.message = write_error_message(path, cause, what)
        super().__init__(code, self.message)
        self.filename = str(path)

    def __str__(self) -> str:
        return self.message


def is_disk_full(err: BaseException | None) -> bool:
    """Whether `err` (or what caused it) says the disk or the user's quota is full."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            return True
        if any(text in str(err).lower() for text in _DISK_FULL_TEXT):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def write_error_message(path: str | os.PathLike, err: BaseException, what: str = "write") -> str:
    """One line for the user: why `path` couldn't be written (`what`: "write", "save the adapter in", …)."""
    if is_disk_full(err):
        return f"Not enough disk space to {what} {path}"
    code = getattr(err, "errno", None)
    if code == errno.EROFS:
        return f"Can't {what} {path}: the disk is read-only"
    if code in (errno.EACCES, errno.EPERM):
        return f"Can't {what} {path}: permission denied"
    if code == errno.EISDIR:
        return f"Can't {what} {path}: a folder of that name is in the way"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return f"Can't {what} {path}: a file is in the way of its folder"
    return f"Can't {what} {path}: {getattr(err, 'strerror', None) or err}"


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); folders can't be opened on Windows, where this is a no-op."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _writes_in_place(target: Path) -> bool:
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO]:
    """Open a temp file beside `path` for writing; when the block ends without error it replaces `path`.

    `mode` is "w" (text, with `encoding` and `newline`) or "wb". Any OSError (in the block or in
    the final sync and rename) becomes `FileWriteError` naming `path`, and `path` keeps its old
    content; any other error removes the temp file and propagates as it is.
    """
    target = Path(path)
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes ('w' or 'wb'), not {mode!r}")
    text_args = {"encoding": encoding, "newline": newline} if mode == "w" else {}
    if _writes_in_place(target):
        try:
            with open(target, mode, **text_args) as fh:
                yield fh
        except OSError as err:
            raise FileWriteError(target, err) from None
        return
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        tmp = Path(name)
        with os.fdopen(fd, mode, **text_args) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
        _sync_folder(target.parent)
    except OSError as err:
        raise FileWriteError(target, err) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Replace `path` with `text` atomically (see `atomic_file`); returns the path."""
    with atomic_file(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data` atomically (see `atomic_file`); returns the path."""
    with atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def _locked_staging(where: Path, prefix: str) -> tuple[Path, RunLock]:
    """A new hidden folder `where/prefix<random>`, its lock taken before it exists."""
    for _ in range(100):
        path = where / f"{prefix}{uuid.uuid4().hex[:10]}"
        lock = RunLock(path)
        if lock.acquire():
            try:
                path.mkdir()
            except FileExistsError:
                lock.release()
                continue
            except BaseException:
                lock.release()
                raise
            return path, lock
    raise FileExistsError(errno.EEXIST, f"no free staging folder name in {where}")


def clean_stale_staging(where: Path, name: str) -> int:
    """Remove the staging folders of NAME (`.NAME.*` in `where`) that a killed export left: those whose lock
    nobody holds. Returns how many went."""
    removed = 0
    try:
        entries = [p for p in where.iterdir() if p.name.startswith(f".{name}.") and p.is_dir() and not p.is_symlink()]
    except OSError:
        return 0
    for entry in entries:
        lock = RunLock(entry)
        try:
            if not lock.acquire():
                continue  # a running export's
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
        except OSError:
            continue
        finally:
            lock.release()
    return removed


def _swap_in(staging: Path, folder: Path) -> None:
    """Move each entry of `staging` into `folder`, replacing the entry of that name; on a failure the
    entries already moved are put back, so `folder` is as it was."""
    old, old_lock = _locked_staging(folder, f".{folder.name}.old.")
    try:
        _swap_entries(staging, folder, old)
    finally:
        old_lock.release()


def _swap_entries(staging: Path, folder: Path, old: Path) -> None:
    moved: list[str] = []
    try:
        for entry in sorted(p.name for p in staging.iterdir()):
            if (folder / entry).exists() or (folder / entry).is_symlink():
                os.replace(folder / entry, old / entry)
            moved.append(entry)
            os.replace(staging / entry, folder / entry)
    except BaseException:
        for entry in reversed(moved):
            if (folder / entry).exists() and not (staging / entry).exists():
                os.replace(folder / entry, staging / entry)
            if (old / entry).exists() or (old / entry).is_symlink():
                os.replace(old / entry, folder / entry)
        shutil.rmtree(old, ignore_errors=True)
        raise
    _sync_folder(folder)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder to fill; when the block ends without error its entries replace the
    entries of the same name in `path` (created if missing; anything else already in it is left alone).

    On an error nothing of `path` has changed and the staging folder is gone; an OSError becomes
    `FileWriteError` naming `path`.
    """
    folder = Path(path)
    staging: Path | None = None
    lock: RunLock | None = None
    try:
        where = folder if folder.is_dir() else folder.parent
        where.mkdir(parents=True, exist_ok=True)
        for place in {where, folder.parent}:  # a first export stages beside the folder, a later one in it
            clean_stale_staging(place, folder.name)
        staging, lock = _locked_staging(where, f".{folder.name}.")
        yield staging
        if where == folder:
            _swap_in(staging, folder)
        else:
            os.rename(staging, folder)  # fails rather than replace a folder that appeared meanwhile
            staging = None
            _sync_folder(folder.parent)
    except OSError as err:
        raise FileWriteError(folder, err) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if lock is not None:
            lock.release()
