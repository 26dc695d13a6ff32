from __future__ import annotations

import logging

import pytest
import torch

from perceptual.errors import ConfigError
from perceptual.evaluation.metrics import psnr
from perceptual.inference.runner import Runner, check_precision, resolve_device
from perceptual.nets import StyleTransferNet


def test_fast_path_matches_fp32_within_40_db() -> None:
    torch.manual_seed(0)
    net = StyleTransferNet(width=8).eval()
    image = torch.rand(2, 3, 48, 40)
    reference = Runner(net, "cpu")(image)
    fast = Runner(net, "cpu", precision="bf16", channels_last=True)(image)
    assert fast.dtype == torch.float32 and fast.shape == reference.shape
    assert psnr(fast * 255, reference * 255).min() > 40


def test_invalid_precision_and_device_are_config_errors() -> None:
    net = StyleTransferNet(width=8)
    with pytest.raises(ConfigError, match="use one of: auto, fp32, bf16, fp16"):
        Runner(net, "cpu", precision="int8")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA or MPS device"):
        Runner(net, "cpu", precision="fp16")


def _available(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str
) -> None:
    _available(monkeypatch, cuda, mps)
    assert resolve_device("auto") == torch.device(expected)


def test_named_devices_must_be_available(monkeypatch: pytest.MonkeyPatch) -> None:
    _available(monkeypatch, cuda=False, mps=False)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device=cuda:1 but no CUDA device is available; use device=cpu or"):
        resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="device=mps but Apple's MPS backend is not available"):
        resolve_device("mps")
    with pytest.raises(ConfigError, match="device=gpu is not a device; use auto, cpu, cuda\\[:N\\] or mps"):
        resolve_device("gpu")
    _available(monkeypatch, cuda=True, mps=True)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and resolve_device("mps") == torch.device("mps")


def test_each_device_refuses_the_precisions_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, mps, cuda = torch.device("cpu"), torch.device("mps"), torch.device("cuda")
    for device in (cpu, mps, cuda):
        check_precision("fp32", device)
    check_precision("bf16", cpu)
    with pytest.raises(ConfigError, match="precision=fp16 needs a CUDA or MPS device; use precision=bf16 or fp32"):
        check_precision("fp16", cpu)
    check_precision("fp16", mps)
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: (major, minor) <= (13, 5))
    with pytest.raises(ConfigError, match="precision=bf16 on MPS needs macOS 14 or newer; use precision=fp16"):
        check_precision("bf16", mps)
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: (major, minor) <= (14, 2))
    check_precision("bf16", mps)
    check_precision("fp16", cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ConfigError, match="precision=bf16 is not supported on Tesla T4; use fp16 or fp32"):
        check_precision("bf16", cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    check_precision("bf16", cuda)
    with pytest.raises(ConfigError, match="precision=int8 is not supported; use one of: auto, fp32, bf16, fp16"):
        check_precision("int8", cpu)


def test_runner_logs_the_device_it_runs_on(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="perceptual.inference.runner"):
        Runner(StyleTransferNet(width=2, n_residual=1), "cpu", precision="bf16")
    assert "running on device: cpu (" in caplog.text and f"torch {torch.__version__}" in caplog.text
    assert "precision bf16" in caplog.text
