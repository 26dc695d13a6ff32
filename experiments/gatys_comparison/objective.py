"""Objective of a trained feed-forward net vs k iterations of optimisation (Johnson et al. 2016, Fig. 5), per size.

    .venv/bin/python experiments/gatys_comparison/objective.py --run outputs/style/<run> \
        [--sizes 256 512 1024] [--iterations 100] [--images a.jpg b.jpg]

The criterion (loss terms, weights, loss network, style image) is rebuilt from what the run's checkpoint records
(perceptual.evaluation.parity.rebuild_criterion), so both methods minimise exactly the same objective. Optimisation
starts from noise (L-BFGS). Writes ``objective.png`` (curves with the net's value as a dashed line) and
``objective.csv`` next to this script, and prints a table. experiments/style_quality/parity.py is the same measure
at one size, with medians over a folder of photos.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torchvision.transforms.v2 import functional as TF

from perceptual.checkpoints import build_net, read_checkpoint
from perceptual.cli import report_errors
from perceptual.data.sample import VAL_PHOTOS, builtin_image
from perceptual.evaluation.parity import format_iterations, measure, rebuild_criterion
from perceptual.imaging.io import load_image

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

    with report_errors():
        checkpoint = read_checkpoint(args.run / "checkpoints" / "last.ckpt")
        criterion = rebuild_criterion(checkpoint, source=str(args.run))
    net = build_net(checkpoint)
    images = (
        {Path(p).stem: load_image(p) for p in args.images}
        if args.images
        else {name: builtin_image(name) for name in VAL_PHOTOS}
    )
    print(f"net trained {checkpoint['global_step']} steps; loss network weights: {criterion.loss_net.source.summary()}")
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
                output = net(content)
            result = measure(criterion, content, output, [steps], name=name)
            reached = format_iterations(result.iterations, [steps])
            print(
                f"| {size} | {name} | {result.feed_forward:.4g} | {result.lbfgs[steps]:.4g} (k={steps}) | {reached} |"
            )
            rows.append([size, name, result.feed_forward, steps, result.lbfgs[steps], reached])
            line = axis.plot(range(1, steps + 1), result.curve, label=f"{name}: optimisation")[0]
            axis.axhline(result.feed_forward, linestyle="--", color=line.get_color(), label=f"{name}: feed-forward net")
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
