"""bf16 on a CPU that emulates it is flagged: training and inference warn, in one line, and name fp32."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from perceptual import cpu_bf16
from perceptual.inference.runner import check_precision
from perceptual.training import train

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def cpuinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "native"), [(AVX2_ONLY, False), (AVX512_BF16, True), (ARM_BF16, True), ("", None)])
def test_native_bf16_reads_the_cpu_flags(tmp_path: Path, text: str, native: bool | None) -> None:
    assert cpu_bf16.native_bf16(cpuinfo(tmp_path, text)) is native


def test_unknown_when_there_is_no_cpuinfo(tmp_path: Path) -> None:
    assert cpu_bf16.native_bf16(tmp_path / "absent") is None


def test_inference_warns_only_for_bf16_on_an_emulating_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cpu_bf16, "CPUINFO", cpuinfo(tmp_path, AVX2_ONLY))
    with caplog.at_level(logging.WARNING, logger="perceptual.cpu_bf16"):
        check_precision("fp32", torch.device("cpu"))
        assert not caplog.records
        check_precision("bf16", torch.device("cpu"))
    [record] = caplog.records
    assert "emulated" in record.getMessage() and "precision=fp32" in record.getMessage()
    monkeypatch.setattr(cpu_bf16, "CPUINFO", cpuinfo(tmp_path, AVX512_BF16))
    assert not cpu_bf16.warn_if_emulated("bf16", torch.device("cpu"))


def test_training_in_bf16_mixed_on_an_emulating_cpu_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cpu_bf16, "CPUINFO", cpuinfo(tmp_path, AVX2_ONLY))
    cfg = compose_config(
        "train", "debug=fast", "trainer.max_steps=1", "trainer.precision=bf16-mixed", output_dir=tmp_path / "run"
    )
    with caplog.at_level(logging.WARNING, logger="perceptual.cpu_bf16"):
        train(cfg)
    assert [r.getMessage() for r in caplog.records if "emulated" in r.getMessage()]
