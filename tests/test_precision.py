"""precision=auto picks bf16 only where the device computes it natively, for training and inference alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from conftest import train_run
from perceptual import cpu_bf16
from perceptual.checkpoints import read_checkpoint
from perceptual.inference.runner import Runner
from perceptual.nets import StyleTransferNet
from perceptual.precision import accelerator_device, auto_precision, trainer_precision
from perceptual.training import set_numerics

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32"), (None, "fp32")])
def test_auto_on_a_cpu_is_bf16_only_where_it_is_native(
    monkeypatch: pytest.MonkeyPatch, native: bool | None, expected: str
) -> None:
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: native)
    assert auto_precision(CPU) == expected


@pytest.mark.parametrize(("bf16_units", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_a_gpu_is_bf16_only_with_bf16_units(
    monkeypatch: pytest.MonkeyPatch, bf16_units: bool, expected: str
) -> None:
    asked: list[bool] = []

    def is_bf16_supported(including_emulation: bool) -> bool:
        asked.append(including_emulation)
        return bf16_units

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert auto_precision(CUDA) == expected
    assert asked == [False]  # emulated bf16 (pre-Ampere) does not count
    assert auto_precision(MPS) == "fp32"


def test_trainer_precision_resolves_auto_and_passes_lightning_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert accelerator_device("auto") == CPU
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: True)
    assert trainer_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: False)
    assert trainer_precision("auto", "auto") == "32-true"
    assert trainer_precision("16-mixed", "cpu") == "16-mixed"
    assert trainer_precision(32, "cpu") == 32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: True)
    assert trainer_precision("auto", "gpu") == "bf16-mixed"


def test_runner_runs_auto_at_the_resolved_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    net = StyleTransferNet(width=2, n_residual=1)
    for native, dtype in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(cpu_bf16, "native_bf16", lambda native=native: native)
        runner = Runner(net, "cpu", precision="auto")
        assert runner.dtype == dtype


@pytest.mark.parametrize("native", [True, False])
def test_training_with_auto_runs_and_records_the_resolved_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: native)
    train_run(tmp_path, "debug=fast", "trainer.max_steps=1")  # trainer.precision=auto is the default
    config = yaml.safe_load(read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["perceptual"]["run_config"])
    assert config["trainer"]["precision"] == ("bf16-mixed" if native else "32-true")


def test_training_sets_cudnn_autotuning_and_tf32_matmuls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # restored afterwards
    before = torch.get_float32_matmul_precision()
    try:
        set_numerics(deterministic=False)
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
        set_numerics(deterministic=True)
        assert not torch.backends.cudnn.benchmark  # autotuning may pick other algorithms from run to run
    finally:
        torch.set_float32_matmul_precision(before)
