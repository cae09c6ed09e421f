"""A real full disk for tests: a small tmpfs mounted for one test (root and `mount` needed, else the test is
skipped with the reason), filled up to its last few bytes on request."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest


class SmallDisk:
    """A mounted tmpfs of a few hundred KiB."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / ".filler"

    def fill(self, leave: int = 0) -> None:
        """Write a filler file until the disk is full, then free `leave` bytes (about) again."""
        block = b"\0" * 4096
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, block)
        except OSError:
            pass
        finally:
            os.close(fd)
        if leave:
            size = self._filler.stat().st_size
            os.truncate(self._filler, max(0, size - leave))

    def empty(self) -> None:
        """Remove the filler (the disk has room again)."""
        self._filler.unlink(missing_ok=True)

    @property
    def free(self) -> int:
        return shutil.disk_usage(self.root).free


def small_disk_at(path: Path, size: str = "512k") -> SmallDisk:
    """Mount a tmpfs of `size` at `path`, or skip the test saying why it can't be."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root and mount (a tmpfs of a few hundred KiB)")
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"can't mount a small tmpfs here: {proc.stderr.strip() or proc.returncode}")
    return SmallDisk(path)


@pytest.fixture
def small_disk(tmp_path):
    """A real disk of 512 KiB (tmpfs), unmounted after the test."""
    disk = small_disk_at(tmp_path / "small-disk")
    yield disk
    subprocess.run(["umount", "-l", str(disk.root)], capture_output=True)


def tree_digest(path: Path) -> dict[str, str]:
    """Every file under `path` (relative name → SHA-256), hidden ones included: byte-for-byte comparison."""
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}
