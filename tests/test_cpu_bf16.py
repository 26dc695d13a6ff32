"""bf16 on a CPU that emulates it is flagged: the decision reads the CPU's flags and what torch's kernels may use, and
training and inference warn, in one line, with the measured cost and the fix."""

from __future__ import annotations

import logging
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from perceptual import cpu_bf16
from perceptual.inference.runner import check_precision
from perceptual.training import train

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("text", "flags"), [(AVX2_ONLY, {"sse2", "avx", "avx2", "fma"}), (ARM_BF16, {"asimd", "sve", "bf16", "i8mm"})]
)
def test_cpuinfo_flags_reads_x86_and_arm_listings(tmp_path: Path, text: str, flags: set[str]) -> None:
    (tmp_path / "cpuinfo").write_text(text)
    assert cpu_bf16.cpuinfo_flags(tmp_path / "cpuinfo") >= flags
    assert cpu_bf16.cpuinfo_flags(tmp_path / "absent") == set()


@pytest.mark.parametrize(
    ("flags", "kernels", "native"),
    [
        ({"avx2", "fma"}, True, False),  # AVX2-only x86: emulated
        ({"avx512f", "avx512_bf16"}, True, True),
        ({"amx_bf16"}, True, True),
        ({"bf16", "asimd"}, True, True),  # Arm's BF16 extension
        ({"avx512_bf16", "amx_bf16"}, False, False),  # the hardware has it, torch is kept from using it
        (set(), True, None),  # nothing known
    ],
)
def test_native_bf16_needs_the_instructions_and_kernels_allowed_to_use_them(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], kernels: bool, native: bool | None
) -> None:
    monkeypatch.setattr(cpu_bf16, "cpu_flags", lambda: flags)
    monkeypatch.setattr(cpu_bf16, "kernels_use_bf16", lambda: kernels)
    assert cpu_bf16.native_bf16() is native


@pytest.mark.skipif(platform.machine() != "x86_64", reason="ATEN_CPU_CAPABILITY=avx2 caps x86 kernels only")
def test_capping_torch_at_avx2_counts_as_emulated() -> None:
    """The AVX2 stand-in of the benchmarks: a bf16 CPU with torch's kernels capped at AVX2 emulates bf16."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = "from perceptual import cpu_bf16; print(cpu_bf16.kernels_use_bf16())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_inference_warns_with_the_measured_cost_only_for_bf16_on_an_emulating_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="perceptual.cpu_bf16"):
        check_precision("fp32", torch.device("cpu"))
        assert check_precision("auto", torch.device("cpu")) == "fp32"
        assert not caplog.records
        check_precision("bf16", torch.device("cpu"))
    [record] = caplog.records
    message = record.getMessage()
    assert "\n" not in message and "emulated" in message and "use precision=auto or fp32" in message
    slowdown = float(re.search(r"took ([\d.]+)x its fp32 time", message).group(1))
    assert slowdown == pytest.approx(cpu_bf16.bf16_slowdown(), abs=0.05)  # measured once, then reused
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: True)
    assert not cpu_bf16.warn_if_emulated("bf16", torch.device("cpu"))


def test_training_in_bf16_mixed_on_an_emulating_cpu_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: False)
    cfg = compose_config(
        "train", "debug=fast", "trainer.max_steps=1", "trainer.precision=bf16-mixed", output_dir=tmp_path / "run"
    )
    with caplog.at_level(logging.WARNING, logger="perceptual.cpu_bf16"):
        train(cfg)
    assert [r.getMessage() for r in caplog.records if "emulated" in r.getMessage()]
