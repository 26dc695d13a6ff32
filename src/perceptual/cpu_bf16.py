"""Whether this CPU computes bfloat16 natively, so that ``bf16`` is a fast path here and not a trap.

x86 CPUs without AVX512-BF16 or AMX, and Arm CPUs without the BF16 extension, emulate bfloat16 arithmetic: a style
training step in bf16-mixed took 134 s against 15 s in fp32 on an AVX2-only EPYC. The hardware's flags come from
torch's CPU probe (``torch.cpu.get_capabilities``) and, for Arm, from ``/proc/cpuinfo``. Having the instructions is
not enough: ``ATEN_CPU_CAPABILITY`` and ``ONEDNN_MAX_CPU_ISA`` can keep torch's kernels from using them, and then bf16
is emulated all the same.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
CAPPING_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")  # what keeps torch's kernels below the hardware
NATIVE_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX512-BF16 / AMX, Arm's BF16 extension


def _cpuinfo_lines(cpuinfo: Path | None = None) -> list[str]:
    try:
        return (cpuinfo or CPUINFO).read_text().splitlines()
    except OSError:
        return []


def cpuinfo_flags(cpuinfo: Path) -> set[str]:
    """The feature flags a ``/proc/cpuinfo`` lists (x86 ``flags``, Arm ``Features``); empty when it cannot be read."""
    return {word for line in _cpuinfo_lines(cpuinfo) if line.startswith(("flags", "Features")) for word in line.split()}


def cpu_flags() -> set[str]:
    """The CPU's feature flags: torch's probe plus ``/proc/cpuinfo`` (Linux); empty when neither knows."""
    return {name for name, value in torch.cpu.get_capabilities().items() if value is True} | cpuinfo_flags(CPUINFO)


def kernels_use_bf16() -> bool:
    """Whether torch's CPU kernels are allowed the bf16 instructions: on x86 ATen must dispatch to its AVX-512 kernels
    (``ATEN_CPU_CAPABILITY``) and oneDNN must offer bf16 (``ONEDNN_MAX_CPU_ISA``)."""
    if platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    return not torch.backends.mkldnn.is_available() or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_bf16() -> bool | None:
    """True when the CPU computes bf16 natively and torch uses it, False when not, None when the flags are unknown."""
    flags = cpu_flags()
    if not flags:
        return None
    return bool(flags & NATIVE_FLAGS) and kernels_use_bf16()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo_lines() if line.startswith("model name")), None)
    return model or platform.processor() or platform.machine()


def fast_path_flags() -> list[str]:
    """The CPU flags that decide which kernels torch runs here (vector width, bf16, AMX), sorted."""
    return sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "bf16", "sve"})


def describe_cpu() -> str:
    """One line for benchmark reports: the CPU, the flags that decide its fast paths, and what torch makes of them."""
    flags = fast_path_flags()
    caps = [f"{name}={os.environ[name]}" for name in CAPPING_VARIABLES if name in os.environ]
    native = {True: "native", False: "emulated", None: "unknown"}[native_bf16()]
    return (
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; flags: "
        f"{' '.join(flags) or 'unknown'}; torch kernels {torch.backends.cpu.get_cpu_capability()}"
        f"{' (' + ', '.join(caps) + ')' if caps else ''}; bf16 {native}"
    )


@functools.cache
def bf16_slowdown() -> float:
    """Seconds of a small bf16 convolution (forward and backward) over the same in fp32, measured once per process:
    the cost the emulation warning names (a VGG-sized layer; well under a second where bf16 is emulated)."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 64, 32, 32, generator=generator)
    weight = torch.randn(64, 64, 3, 3, generator=generator, requires_grad=True)

    def seconds(dtype: torch.dtype) -> float:
        x, w = image.to(dtype), weight.to(dtype)
        best = float("inf")
        for _ in range(4):  # the best of several: the first calls set up kernels
            start = time.perf_counter()
            F.conv2d(x, w, padding=1).sum().backward()
            best = min(best, time.perf_counter() - start)
        return best

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core: the ratio holds per core, and a busy machine's other core cannot skew it
    try:
        return seconds(torch.bfloat16) / seconds(torch.float32)
    finally:
        torch.set_num_threads(threads)


def warn_if_emulated(precision: str, device: torch.device) -> bool:
    """Log one warning, with the measured cost, when a bf16 precision is asked of a CPU that emulates it; whether it
    warned."""
    if device.type != "cpu" or not str(precision).startswith("bf16") or native_bf16() is not False:
        return False
    log.warning(
        "precision=%s is emulated on this CPU (no AVX512-BF16, AMX or Arm BF16 in use): a bf16 convolution took %.1fx "
        "its fp32 time here; use precision=auto or fp32 (trainer.precision=auto or 32-true)",
        precision,
        bf16_slowdown(),
    )
    return True
