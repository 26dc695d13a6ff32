"""Feed-forward stylisation vs optimisation (Johnson et al. 2016, Table 1) on this device.

    .venv/bin/python experiments/gatys_comparison/speed.py [--sizes 256 512 1024] [--measure 5]

Optimisation: L-BFGS over the pixels with the style-transfer criterion (VGG-16, content relu2_2,
style relu1_2..relu4_3, TV), L-BFGS with a strong-Wolfe line search. After the first few iterations each
one runs a single objective evaluation, so the time of 100/300/500 iterations is the median measured
iteration time (``--measure``
iterations after one warm-up) times the count; pass ``--full`` to run all 500 instead.
Feed-forward: the Johnson style net, eager fp32, median of 3 runs after warm-up. Loss-network weights
are random (speed does not depend on their values).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from perceptual.inference.runner import describe_device
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, TotalVariationLoss
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet
from perceptual.optimization.pixel import initial_image, optimize_image

ITERATIONS = (100, 300, 500)


def feed_forward_seconds(net: torch.nn.Module, image: torch.Tensor) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(4):
            start = time.perf_counter()
            net(image)
            if image.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def iteration_seconds(criterion: PerceptualCriterion, image: torch.Tensor, measure: int, full: bool) -> list[float]:
    steps = max(ITERATIONS) if full else measure + 1
    result = optimize_image(criterion, initial_image("noise", image), image, steps=steps)
    return result.seconds[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--measure", type=int, default=5, help="timed optimisation iterations per size")
    parser.add_argument("--full", action="store_true", help="run all 500 iterations instead of extrapolating")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(describe_device(device))
    torch.manual_seed(0)
    net = StyleTransferNet().to(device).eval()
    criterion = PerceptualCriterion(
        {
            "content": FeatureLoss(1.0, ["relu2_2"]),
            "style": GramStyleLoss(10.0, ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]),
            "tv": TotalVariationLoss(1e-6),
        },
        loss_net=lambda layers: LossNetwork(layers, weights="random"),
    ).to(device)
    criterion.set_styles([torch.rand(3, 256, 256, device=device)])
    header = " | ".join(f"optim. {n} it. (s)" for n in ITERATIONS)
    print(f"\n| size | feed-forward (s) | {header} | speed-up vs 500 it. |")
    print("|---|---|" + "---|" * len(ITERATIONS) + "---|")
    for size in args.sizes:
        image = torch.rand(1, 3, size, size, device=device)
        forward = feed_forward_seconds(net, image)
        per_iteration = statistics.median(iteration_seconds(criterion, image, args.measure, args.full))
        totals = " | ".join(f"{per_iteration * n:.1f}" for n in ITERATIONS)
        print(f"| {size} | {forward:.3f} | {totals} | {per_iteration * 500 / forward:.0f}x |")


if __name__ == "__main__":
    main()
