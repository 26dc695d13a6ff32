"""The one inference pipeline: what it builds from a command's options, for each kind of net."""

from __future__ import annotations

import pytest
import torch

from conftest import compose_config
from perceptual.errors import ConfigError
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet


def test_options_come_from_a_commands_config() -> None:
    cfg = compose_config("stylize", "ckpt=x", "input=y", "output=z", "tile=64", "bank=1", "strength=0.5")
    options = PipelineOptions.from_config(cfg)
    assert (options.tile, options.strength, options.fusion, options.device) == (64, 0.5, {"bank": 1}, "auto")
    evaluate = PipelineOptions.from_config(compose_config("evaluate", "tile=32", "precision=bf16"))
    assert evaluate == PipelineOptions(tile=32, precision="bf16")  # no style keys in evaluate.yaml: defaults


def test_the_pipeline_applies_each_stage_the_options_ask_for() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 60, 68)
    bank = StyleBankNet(num_styles=3, width=4).eval()
    with torch.no_grad():
        plain = build_pipeline(bank, PipelineOptions(device="cpu"))(x)  # bank 0 by default
        chosen = build_pipeline(bank, PipelineOptions(device="cpu", fusion={"bank": 2}))(x)
        faded = build_pipeline(bank, PipelineOptions(device="cpu", fusion={"bank": 2}, strength=0.25))(x)
        torch.testing.assert_close(plain, bank(x, style_index=0).clamp(0, 1))
        torch.testing.assert_close(chosen, bank(x, style_index=2).clamp(0, 1))
        torch.testing.assert_close(faded, 0.75 * x + 0.25 * chosen)
        tiled = build_pipeline(bank, PipelineOptions(device="cpu", tile=48, fusion={"bank": 2}))(x)
    torch.testing.assert_close(tiled, chosen, rtol=0, atol=1e-5)


def test_stages_that_do_not_fit_the_net_are_refused_in_one_line() -> None:
    style = StyleTransferNet(width=4, n_residual=1)
    sr = SuperResolutionNet(scale=2, width=4, n_residual=1)
    with pytest.raises(ConfigError, match="bank= only apply to StyleBank checkpoints; this one holds a StyleTransfer"):
        build_pipeline(style, PipelineOptions(device="cpu", fusion={"bank": 1}))
    with pytest.raises(ConfigError, match="this checkpoint holds a SuperResolutionNet, whose upscaled output"):
        build_pipeline(sr, PipelineOptions(device="cpu", preserve_color=True))
