"""Where a model runs, declared once: the device choices every command line and setting offers, and the
pick among them (the first of CUDA, Apple MPS and the CPU that this machine has, for "auto")."""

from __future__ import annotations

from typing import Any

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")


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
