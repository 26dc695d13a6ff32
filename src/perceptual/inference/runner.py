"""Load a trained transformation net from a checkpoint and run it fast on any device.

Inference needs only the net: its config and weights travel in the checkpoint, so neither the
Hydra config tree nor the loss network's weights are needed to stylise or upscale.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perceptual.checkpoints import CheckpointMetadata, build_net, checkpoint_metadata, read_checkpoint
from perceptual.choices import check_choice
from perceptual.cpu_bf16 import warn_if_emulated
from perceptual.errors import ConfigError
from perceptual.precision import AUTO, Precision, auto_precision

log = logging.getLogger(__name__)


def load_net(path: str | Path, trust: bool = False) -> tuple[nn.Module, CheckpointMetadata]:
    """The trained net of a checkpoint or ``zoo:<name>`` in eval mode, and the checkpoint's metadata (task, styles);
    ``trust`` loads a file that needs full unpickling (unsafe: see :func:`perceptual.checkpoints.load_file`)."""
    checkpoint = read_checkpoint(path, trust)
    return build_net(checkpoint), checkpoint_metadata(checkpoint)


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA if available, else Apple's MPS, else the CPU; a named device must be available."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device={device} is not a device; use auto, cpu, cuda[:N] or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but no CUDA device is available; use device=cpu or device=auto")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device={device} but Apple's MPS backend is not available (it needs macOS 12.3+ on Apple silicon "
            "or an AMD GPU); use device=cpu or device=auto"
        )
    return resolved


def check_precision(precision: str, device: torch.device) -> str:
    """The precision to run ``device`` at: ``auto`` resolved (:func:`~perceptual.precision.auto_precision`), any other
    as given; a precision the device cannot run is refused in one line naming one it can."""
    check_choice("precision", precision, Precision)
    if precision == AUTO:
        return auto_precision(device)
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision=fp16 needs a CUDA or MPS device; use precision=bf16 or fp32 on the CPU")
    if precision == "bf16" and device.type == "mps" and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise ConfigError("precision=bf16 on MPS needs macOS 14 or newer; use precision=fp16 or fp32 on this Mac")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"precision=bf16 is not supported on {torch.cuda.get_device_name(device)}; use fp16 or fp32")
    warn_if_emulated(precision, device)
    return precision


def describe_device(device: torch.device) -> str:
    """One line naming the device, torch version and CPU threads: the runner logs it, benchmark reports print it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}"


class Runner:
    """Runs ``net`` under the chosen fast path: bf16/fp16 autocast (``auto``: bf16 where the device computes it
    natively), channels_last, torch.compile
    (static shapes: a folder of one image size compiles once; each new size recompiles).

    Output is always float32 in [0, 1] on the CPU side of the caller's choosing.
    """

    def __init__(
        self,
        net: nn.Module,
        device: str = "auto",
        precision: Precision = "fp32",
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.channels_last = channels_last
        net = net.to(self.device).eval()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net: Callable[..., Tensor] = torch.compile(net, dynamic=False) if compile else net
        chosen = f"{self.precision} (auto)" if precision == AUTO else precision
        log.info("running on %s; precision %s", describe_device(self.device), chosen)

    @torch.inference_mode()
    def __call__(self, batch: Tensor, **kwargs: Any) -> Tensor:
        batch = batch.to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext()
        with autocast:
            out = self.net(batch, **kwargs)
        return out.float().clamp(0, 1)
