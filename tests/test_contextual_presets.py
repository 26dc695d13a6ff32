"""The contextual-loss presets compose and train with every task they serve."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import compose_config, train_run
from perceptual.losses.builder import build_criterion


def test_presets_follow_the_papers() -> None:
    style = compose_config("train", "loss=contextual_style")
    assert style.loss_net.arch == "vgg19"
    assert list(style.loss.terms.style.layers) == ["conv3_2", "conv4_2"] and style.loss.terms.style.h == 0.5
    assert list(style.loss.terms.content.layers) == ["conv4_2"] and style.loss.terms.content.reference == "target"
    sr = compose_config("train", "task=sr", "loss=contextual_sr")
    assert sr.loss_net.arch == "vgg19" and sr.loss.terms.contextual.h == 0.1 and sr.loss.terms.contextual.weight == 0.1
    assert sr.loss.terms.low_frequency.weight == 10.0 and sr.loss.terms.low_frequency.blur_sigma > 0


@pytest.mark.parametrize("overrides", [["loss=contextual_style"], ["task=sr", "scale=4", "loss=contextual_sr"]])
def test_short_training_with_each_preset(overrides: list[str], tmp_path: Path) -> None:
    train_run(tmp_path, "debug=fast", "trainer.max_steps=2", *overrides)
    weights = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(value).all() for value in weights.values())
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    terms = [tag for tag in events.Tags()["scalars"] if tag.startswith("train/")]
    assert "train/loss" in terms and len(terms) > 1
    for tag in terms:  # every term at every step (debug=fast logs each step), finite
        steps = {event.step for event in events.Scalars(tag)}
        values = [event.value for event in events.Scalars(tag)]
        assert steps == {0, 1} and all(math.isfinite(value) for value in values), (tag, steps, values)


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
