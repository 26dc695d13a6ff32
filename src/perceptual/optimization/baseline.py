"""The optimisation baseline as a command (``src/optimize_image.py``): compose the criterion from config, optimise an
image's pixels (:mod:`perceptual.optimization.pixel`), write the image, the loss curve and TensorBoard logs into the
run directory."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from perceptual.data.sample import resolve_image
from perceptual.imaging.io import save_image
from perceptual.inference.runner import resolve_device
from perceptual.losses.builder import build_criterion
from perceptual.losses.criterion import LossOutput
from perceptual.optimization.pixel import OptimizationResult, initial_image, optimize_image
from perceptual.training import flush_denormals

log = logging.getLogger(__name__)


def write_loss_curve(result: OptimizationResult, path: Path) -> None:
    """CSV: iteration, seconds since start, total objective, each term."""
    names = list(result.terms[0]) if result.terms else []
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["iteration", "seconds", "loss", *names])
        elapsed = 0.0
        for i, (loss, terms, seconds) in enumerate(zip(result.losses, result.terms, result.seconds), start=1):
            elapsed += seconds
            writer.writerow([i, f"{elapsed:.4f}", f"{loss:.6g}", *(f"{terms[n]:.6g}" for n in names)])


def run_optimization_baseline(cfg: DictConfig) -> OptimizationResult:
    """Run ``optimize_image.yaml``: content + style through the configured loss, from content or noise."""
    flush_denormals()
    device = resolve_device(cfg.device)
    output_dir = Path(cfg.paths.output_dir)
    content = resolve_image(cfg.content, "content", cfg.image_size).to(device)[None]
    criterion = build_criterion(cfg.loss, cfg.loss_net).to(device)
    if criterion.needs_styles:
        criterion.set_styles([resolve_image(cfg.style, "style", cfg.style_size).to(device)])
    writer = SummaryWriter(str(output_dir / "tensorboard"))

    def on_step(iteration: int, image: torch.Tensor, losses: LossOutput) -> None:
        writer.add_scalar("optimize/loss", losses.total.item(), iteration)
        for name, value in losses.terms.items():
            writer.add_scalar(f"optimize/{name}", value.item(), iteration)
        if iteration % cfg.log_every == 0 or iteration == cfg.steps:
            writer.add_image("optimize/image", image[0].clamp(0, 1), iteration)
            log.info("iteration %d: loss %.6g", iteration, losses.total.item())

    start = initial_image(cfg.init, content, cfg.seed)
    result = optimize_image(criterion, start, content, cfg.steps, cfg.optimizer, cfg.lr, on_step=on_step)
    writer.close()
    save_image(result.image[0], output_dir / "result.png")
    write_loss_curve(result, output_dir / "loss_curve.csv")
    log.info("wrote %s after %d iterations (%.1f s)", output_dir / "result.png", cfg.steps, sum(result.seconds))
    return result
