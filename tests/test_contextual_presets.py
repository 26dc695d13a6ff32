"""The contextual-loss presets compose and train with every task they serve."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import compose_config, train_run
from perceptual.checkpoints import checkpoint_metadata
from perceptual.losses import PerceptualCriterion
from perceptual.losses.builder import build_criterion


def _criterion(*overrides: str) -> PerceptualCriterion:
    cfg = compose_config("train", *overrides, "loss_net.weights=random")
    return build_criterion(cfg.loss, cfg.loss_net)


def _smooth(seed: int) -> torch.Tensor:
    """A photo-like image: random colours upsampled smoothly."""
    coarse = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=(48, 48), mode="bicubic", align_corners=False).clamp(0, 1)


def test_contextual_style_preset_pulls_towards_the_style_and_the_content() -> None:
    criterion = _criterion("loss=contextual_style")
    assert criterion.loss_net.arch == "vgg19" and criterion.loss_net.layers[-1] == "conv4_2"  # VGG-19, cut there
    photo, style = _smooth(1), torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    criterion.set_styles([style[0]])
    at_photo, at_style = criterion(photo, target=photo), criterion(style, target=photo)
    assert at_style.terms["style"] < at_photo.terms["style"]  # the style term prefers the style image's features
    assert at_photo.terms["content"] < at_style.terms["content"]  # the content term prefers the photo's


def test_contextual_sr_preset_splits_low_and_high_frequencies() -> None:
    criterion = _criterion("task=sr", "loss=contextual_sr")
    assert criterion.loss_net.arch == "vgg19"
    hr = _smooth(3)
    rows, cols = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    checker = 0.1 * (-1.0) ** (rows + cols)
    offset, detail = criterion(hr + 0.1, target=hr), criterion(hr + checker, target=hr)
    # weight 10 x the MSE of the blurred difference: a constant offset survives the blur, a checkerboard does not
    torch.testing.assert_close(offset.terms["low_frequency"], torch.tensor(10 * 0.1**2), rtol=1e-4, atol=0)
    assert detail.terms["low_frequency"] < 1e-6
    assert detail.terms["contextual"] > criterion(hr, target=hr).terms["contextual"]  # CX sees the detail
    for losses in (offset, detail):
        torch.testing.assert_close(losses.total, losses.terms["contextual"] + losses.terms["low_frequency"])


@pytest.mark.parametrize("overrides", [["loss=contextual_style"], ["task=sr", "scale=4", "loss=contextual_sr"]])
def test_short_training_with_each_preset(overrides: list[str], tmp_path: Path) -> None:
    train_run(tmp_path, "debug=fast", "trainer.max_steps=2", *overrides)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values())
    assert checkpoint_metadata(checkpoint).loss_net_source.arch == "vgg19"  # the preset's network, recorded
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    terms = [tag for tag in events.Tags()["scalars"] if tag.startswith("train/")]
    assert "train/loss" in terms and len(terms) > 1
    values = {tag: {event.step: event.value for event in events.Scalars(tag)} for tag in terms}
    for tag, by_step in values.items():  # every term at every step (debug=fast logs each step), finite
        assert set(by_step) == {0, 1} and all(math.isfinite(value) for value in by_step.values()), (tag, by_step)
    for step in (0, 1):  # the logged loss is the sum of the logged terms
        parts = sum(by_step[step] for tag, by_step in values.items() if tag != "train/loss")
        assert math.isclose(values["train/loss"][step], parts, rel_tol=1e-4), (step, values)


@pytest.mark.parametrize(
    ("overrides", "layers"),
    [(["loss=contextual_style_vgg16"], ["conv3_2", "conv4_2"]), (["task=sr", "loss=contextual_sr_vgg16"], ["relu3_3"])],
)
def test_vgg16_variants_for_hed_weights(overrides: list[str], layers: list[str]) -> None:
    cfg = compose_config("train", *overrides, "loss_net.weights=random")
    assert cfg.loss_net.arch == "vgg16"
    terms = cfg.loss.terms
    assert list((terms.get("style") or terms.contextual).layers) == layers
    criterion = build_criterion(cfg.loss, cfg.loss_net)  # every layer exists in VGG-16
    assert criterion.loss_net.arch == "vgg16"
