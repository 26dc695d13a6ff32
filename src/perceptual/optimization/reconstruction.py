"""What each loss-network layer keeps: images reconstructed from one layer's features or from the
Gram matrices of a set of layers, starting from noise (Johnson et al. 2016, Figures 3 and 4)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from perceptual.data.sample import resolve_image
from perceptual.imaging.io import save_image
from perceptual.inference.runner import resolve_device
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, Reference
from perceptual.losses.builder import build_loss_network
from perceptual.lossnet.vgg import LossNetwork
from perceptual.optimization.pixel import Optimizer, initial_image, optimize_image
from perceptual.tasks.base import TransformTask

log = logging.getLogger(__name__)


def reconstruct(
    image: Tensor,
    loss_net: LossNetwork,
    feature_layers: Sequence[str] = (),
    style_layer_sets: Sequence[Sequence[str]] = (),
    steps: int = 200,
    optimizer: Optimizer = "lbfgs",
    seed: int = 0,
) -> dict[str, Tensor]:
    """Panels ``feature/<layer>`` and ``style/<layers>`` -> reconstructed [1, 3, H, W] images.

    ``loss_net`` must include every requested layer; it is shared by all reconstructions.
    """
    image = image if image.dim() == 4 else image[None]
    start = initial_image("noise", image, seed)
    panels: dict[str, Tensor] = {}
    for layer in feature_layers:
        criterion = PerceptualCriterion({"feature": FeatureLoss(1.0, [layer])}, loss_net=loss_net)
        panels[f"feature/{layer}"] = optimize_image(criterion, start, image, steps, optimizer).image
        log.info("reconstructed from feature %s", layer)
    for layers in style_layer_sets:
        criterion = PerceptualCriterion({"style": GramStyleLoss(1.0, list(layers))}, loss_net=loss_net)
        criterion.set_styles([image])
        panels["style/" + "+".join(layers)] = optimize_image(criterion, start, None, steps, optimizer).image
        log.info("reconstructed from style %s", "+".join(layers))
    return panels


def write_panels(panels: dict[str, Tensor], writer: SummaryWriter, output_dir: Path, step: int = 0) -> None:
    """One TensorBoard image per panel plus a combined grid; the same as PNG files."""
    for name, panel in panels.items():
        writer.add_image(f"reconstruction/{name}", panel[0].clamp(0, 1), step)
        save_image(panel[0], output_dir / f"{name.replace('/', '_')}.png")
    grid = make_grid(torch.cat([p.clamp(0, 1).cpu() for p in panels.values()]), nrow=len(panels), padding=2)
    writer.add_image("reconstruction/grid", grid, step)
    save_image(grid, output_dir / "grid.png")


def run_reconstruction(cfg: DictConfig) -> dict[str, Tensor]:
    """Run ``reconstruct.yaml``: every requested layer / layer set for one image."""
    device = resolve_device(cfg.device)
    output_dir = Path(cfg.paths.output_dir)
    image = resolve_image(cfg.image, "image", cfg.image_size).to(device)
    layers = [*cfg.feature_layers, *(layer for group in cfg.style_layer_sets for layer in group)]
    loss_net = build_loss_network(cfg.loss_net, layers)
    panels = reconstruct(
        image, loss_net.to(device), cfg.feature_layers, cfg.style_layer_sets, cfg.steps, cfg.optimizer, cfg.seed
    )
    with SummaryWriter(str(output_dir / "tensorboard")) as writer:
        writer.add_image("reconstruction/original", image.clamp(0, 1), 0)
        write_panels(panels, writer, output_dir)
    return panels


class LayerReconstructions(pl.Callback):
    """At the end of training, reconstruct the first validation image from each layer the current
    loss uses (feature terms: one panel per layer; style terms: their layer set), from noise, and log
    the panels to TensorBoard and as PNGs: what the trained objective can 'see'."""

    def __init__(self, dirpath: str, steps: int = 100) -> None:
        self.dirpath = Path(dirpath)
        self.steps = steps

    def on_train_end(self, trainer: pl.Trainer, pl_module: TransformTask) -> None:
        criterion, images = pl_module.criterion, pl_module.validation_images()
        if not trainer.is_global_zero or criterion.loss_net is None or not images:
            return
        image = next(iter(images.values()))[:1]
        feature_layers, style_sets = criterion.network_layers(Reference.TARGET), criterion.gram_layer_sets()
        with torch.enable_grad():
            panels = reconstruct(image, criterion.loss_net, feature_layers, style_sets, self.steps)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_image"):
                write_panels(panels, logger.experiment, self.dirpath, trainer.global_step)
