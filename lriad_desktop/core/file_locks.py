"""OS locks that die with their process: the lock a training run holds on its adapter folder's name while it lives
(also taken by one watch per folder and by exports while they stage).

`lriad train --out DIR/NAME` holds an OS lock on `DIR/.NAME.lock` from its start to its end; the
operating system drops it when the process dies, even on SIGKILL. So a `running` row, a hidden
temp folder or an unregistered adapter whose lock nobody holds belongs to a run that is gone, and
reconciliation (`core.training_runs.recovery`) may clean it up; one whose lock is held belongs to a live run
(in this app, another window or a command line) and is left alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

if os.name == "nt":
    import msvcrt
else:
    import fcntl


def lock_path(out_dir: str | os.PathLike) -> Path:
    """The lock file of a run that writes the adapter folder `out_dir`: `.NAME.lock` beside it."""
    out = Path(out_dir)
    return out.parent / f".{out.name}.lock"


def _try_lock(fd: int) -> bool:
    try:
        if os.name == "nt":
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class RunLock:
    """An exclusive, non-blocking OS lock on one adapter folder name (see the module docstring)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = lock_path(out_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lock; False when another process (or another `RunLock` here) holds it for `wait_s`
        seconds (a reconciliation holds a free name's lock for a moment while it looks)."""
        deadline = time.monotonic() + wait_s
        while not self._acquire_now():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _acquire_now(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a holder may remove the file between our open and our lock: then open it again
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                return False
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)
        return False

    def release(self) -> None:
        """Remove the lock file and drop the lock (removed while still held, so nobody locks a stale file)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # Windows can't remove an open file: it stays, unlocked, for the next run to reuse
            pass
        if os.name == "nt":
            try:
                os.lseek(self._fd, 0, os.SEEK_SET)
                msvcrt.locking(self._fd, msvcrt.LK_UNLCK, 1)
            except OSError:
                pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
