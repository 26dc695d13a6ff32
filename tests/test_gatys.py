from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter
from torchvision.transforms.v2 import functional as TF

from conftest import run_cli
from perceptual.data.sample import builtin_image
from perceptual.gatys import initial_image, optimize_image
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, TotalVariationLoss
from perceptual.lossnet import LossNetwork
from perceptual.metrics import psnr
from perceptual.reconstruction import reconstruct, write_panels


def small_image(size: int = 32) -> torch.Tensor:
    return TF.resize(builtin_image("astronaut"), [size, size], antialias=True)[None]


def test_optimisation_reduces_the_objective() -> None:
    content = small_image()
    criterion = PerceptualCriterion(
        {
            "content": FeatureLoss(1.0, ["relu2_2"]),
            "style": GramStyleLoss(10.0, ["relu1_2", "relu2_2"]),
            "tv": TotalVariationLoss(1e-4),
        },
        loss_net=lambda layers: LossNetwork(layers, weights="random"),
    )
    criterion.set_styles([builtin_image("mosaic")[:, :48, :48]])
    for optimizer in ("lbfgs", "adam"):
        result = optimize_image(criterion, initial_image("noise", content), content, steps=20, optimizer=optimizer)
        assert result.losses[-1] < 0.5 * result.losses[0], optimizer
        assert len(result.seconds) == 20 and result.image.min() >= 0 and result.image.max() <= 1


def test_reconstruction_from_an_early_layer_approaches_the_image() -> None:
    image = small_image()
    loss_net = LossNetwork(["relu1_2"], weights="random")
    noise = initial_image("noise", image)
    panels = reconstruct(image, loss_net, feature_layers=["relu1_2"], steps=60)
    assert psnr(panels["feature/relu1_2"] * 255, image * 255) > psnr(noise * 255, image * 255) + 5


def test_panels_are_logged_one_image_per_layer(tmp_path: Path) -> None:
    image = small_image(16)
    loss_net = LossNetwork(["relu1_2", "relu2_2"], weights="random")
    panels = reconstruct(image, loss_net, ["relu1_2", "relu2_2"], [["relu1_2"], ["relu1_2", "relu2_2"]], steps=2)
    with SummaryWriter(str(tmp_path / "tb")) as writer:
        write_panels(panels, writer, tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    expected = {f"reconstruction/{name}" for name in panels} | {"reconstruction/grid"}
    assert set(events.Tags()["images"]) == expected
    assert len(panels) == 4 and (tmp_path / "grid.png").is_file()


def test_optimize_cli_writes_image_curve_and_logs(tmp_path: Path) -> None:
    result = run_cli(
        "optimize.py",
        "loss_net.weights=random",
        "image_size=32",
        "style_size=32",
        "steps=5",
        "log_every=5",
        "init=noise",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "result.png").is_file()
    rows = (tmp_path / "loss_curve.csv").read_text().splitlines()
    assert rows[0] == "iteration,seconds,loss,content,style,tv" and len(rows) == 6
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_training_callback_logs_panels_for_the_loss_layers(tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "debug=fast",
        "trainer.max_steps=2",
        "callbacks=reconstructions",
        "callbacks.layer_reconstructions.steps=2",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = set(events.Tags()["images"])
    assert {"reconstruction/feature/relu2_2", "reconstruction/style/relu1_2+relu2_2+relu3_3+relu4_3"} <= tags
