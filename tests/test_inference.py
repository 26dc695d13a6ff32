from __future__ import annotations

import pytest
import torch

from perceptual.errors import ConfigError
from perceptual.inference import Runner
from perceptual.metrics import psnr
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
    with pytest.raises(ConfigError, match="use one of: fp32, bf16, fp16"):
        Runner(net, "cpu", precision="int8")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Runner(net, "cpu", precision="fp16")
