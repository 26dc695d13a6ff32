"""Objective of a trained feed-forward net vs k iterations of optimisation (Johnson et al. 2016, Fig. 5).

    .venv/bin/python experiments/gatys_comparison/objective.py --run outputs/style/<run> \
        [--sizes 256 512 1024] [--iterations 100] [--images a.jpg b.jpg]

The criterion (loss terms, weights, loss network, style image) is rebuilt from the training run's
own ``.hydra/config.yaml``, so both methods minimise exactly the same objective. Optimisation starts
from noise (L-BFGS). Writes ``objective.png`` (curves with the net's value as a dashed line) and
``objective.csv`` next to this script, and prints a table.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from omegaconf import OmegaConf
from torchvision.transforms.v2 import functional as TF

from perceptual.checkpoints import build_net, read_checkpoint
from perceptual.data.sample import VAL_PHOTOS, builtin_image, resolve_image
from perceptual.imaging.io import load_image
from perceptual.losses.builder import build_criterion
from perceptual.optimization.pixel import initial_image, optimize_image

HERE = Path(__file__).parent


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    return TF.center_crop(TF.resize(image, size, antialias=True), [size, size])[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a style-transfer run directory")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, nargs="+", default=[100], help="per size (last value repeats)")
    parser.add_argument("--images", nargs="*", help="held-out content images (default: built-in validation photos)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    cfg = OmegaConf.load(args.run / ".hydra" / "config.yaml")
    criterion = build_criterion(cfg.loss, cfg.loss_net)
    criterion.set_styles([resolve_image(cfg.style, "style", cfg.task.get("style_size"))])
    checkpoint = read_checkpoint(args.run / "checkpoints" / "last.ckpt")
    net = build_net(checkpoint)
    images = (
        {Path(p).stem: load_image(p) for p in args.images}
        if args.images
        else {name: builtin_image(name) for name in VAL_PHOTOS}
    )
    print(f"net trained {checkpoint['global_step']} steps; loss network weights: {cfg.loss_net.weights}")
    print("| size | image | feed-forward objective | optimisation after k iterations | iterations to reach the net |")
    print("|---|---|---|---|---|")
    rows = []
    figure, axes = plt.subplots(1, len(args.sizes), figsize=(5 * len(args.sizes), 4), squeeze=False)
    for column, size in enumerate(args.sizes):
        steps = args.iterations[min(column, len(args.iterations) - 1)]
        axis = axes[0][column]
        for name, image in images.items():
            content = square(image, size)
            with torch.no_grad():
                feed_forward = criterion(net(content), target=content).total.item()
            curve = optimize_image(criterion, initial_image("noise", content), content, steps=steps).losses
            reached = next((i + 1 for i, loss in enumerate(curve) if loss <= feed_forward), None)
            print(f"| {size} | {name} | {feed_forward:.4g} | {curve[-1]:.4g} (k={steps}) | {reached or f'> {steps}'} |")
            rows.append([size, name, feed_forward, steps, curve[-1], reached or ""])
            line = axis.plot(range(1, steps + 1), curve, label=f"{name}: optimisation")[0]
            axis.axhline(feed_forward, linestyle="--", color=line.get_color(), label=f"{name}: feed-forward net")
        axis.set(title=f"{size} x {size}", xlabel="L-BFGS iteration", ylabel="objective", yscale="log")
        axis.legend(fontsize=7)
    figure.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out / "objective.png", dpi=100)
    with (args.out / "objective.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["size", "image", "feed_forward", "iterations", "optimisation", "iterations_to_reach_net"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
