"""``precision=auto``: the fastest precision a device computes natively, for training and inference alike.

bf16 halves the memory traffic and, where the hardware has bf16 units, doubles the arithmetic rate; where it is
emulated it is many times slower than fp32 (:mod:`perceptual.cpu_bf16`). ``auto`` therefore picks bf16 on CUDA GPUs
with bf16 units (Ampere and newer) and on CPUs that compute it natively (AVX512-BF16, AMX, Arm BF16), and fp32
everywhere else (older GPUs, emulating CPUs, Apple's MPS, whose bf16 speed was never measured here).
"""

from __future__ import annotations

import logging
from typing import Literal

import torch

from perceptual import cpu_bf16

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
AUTO = "auto"
LIGHTNING_PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed"}  # Lightning's name of each precision auto picks


def auto_precision(device: torch.device) -> Literal["fp32", "bf16"]:
    """bf16 where ``device`` computes it natively, else fp32 (see the module docstring)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_bf16.native_bf16() else "fp32"
    return "fp32"


def accelerator_device(accelerator: str) -> torch.device:
    """The device type a Lightning ``accelerator`` trains on, ``auto`` and ``gpu`` resolved in Lightning's order (MPS,
    then CUDA, then the CPU for ``auto``)."""
    if accelerator in ("auto", "gpu") and torch.backends.mps.is_available():
        return torch.device("mps")
    if accelerator == "gpu" or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu" if accelerator == "auto" else accelerator)


def trainer_precision(precision: str | int, accelerator: str) -> str | int:
    """``trainer.precision`` for Lightning: ``auto`` becomes ``bf16-mixed`` or ``32-true`` for the accelerator's
    device (logged once); any other value is Lightning's own and passes unchanged."""
    if precision != AUTO:
        return precision
    device = accelerator_device(str(accelerator))
    chosen = LIGHTNING_PRECISION[auto_precision(device)]
    log.info("trainer.precision=auto: %s on %s", chosen, device.type)
    return chosen
