"""Where a model runs, declared once: the device choices every command line and setting offers, and the
pick among them (the first of CUDA, Apple MPS and the CPU that this machine has, for "auto")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
DEVICE_NAMES: tuple[str, ...] = ("Best this computer has", "NVIDIA GPU", "Apple GPU", "Processor (CPU)")


@dataclass(frozen=True)
class DeviceOption:
    """One device choice as this machine offers it: usable, or why not."""

    choice: str  # "cuda"
    name: str  # "NVIDIA GPU"
    available: bool
    why_not: str = ""  # "no NVIDIA GPU on this computer"


def device_options() -> tuple[DeviceOption, ...]:
    """The device choices with what this machine has (imports torch: call it off the UI thread)."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    gpu = torch.cuda.get_device_name(0) if cuda else ""
    no_cuda = ("this torch build has no CUDA support" if not torch.version.cuda
               else "no NVIDIA GPU found on this computer")
    usable = {"auto": (True, ""), "cpu": (True, ""), "cuda": (cuda, no_cuda),
              "mps": (mps, "no Apple GPU (Metal) on this computer")}
    names = dict(zip(DEVICE_CHOICES, DEVICE_NAMES))
    if cuda:
        names["cuda"] = f"NVIDIA GPU ({gpu})"
    return tuple(DeviceOption(c, names[c], usable[c][0], "" if usable[c][0] else usable[c][1]) for c in DEVICE_CHOICES)


def pick_device(preference: str = "auto") -> tuple[str, Any]:
    """`(device, dtype)`: CUDA with bf16, Apple MPS with fp16, else CPU with fp32."""
    import torch

    pref = (preference or "auto").lower()
    if pref in ("auto", "cuda") and torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        return "cuda", torch.bfloat16 if bf16 else torch.float16
    if pref in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps", torch.float16
    if pref not in DEVICE_CHOICES:
        raise ValueError(f"unknown device '{preference}' (use {', '.join(DEVICE_CHOICES)})")
    return "cpu", torch.float32
