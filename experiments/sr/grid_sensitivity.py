"""How much each loss sees the super-resolution grid: is the feature loss blind to patterns of the upsampling period?

The x4 feature-loss nets grow a faint grid (power at the k/scale frequencies) that TV does not remove
(experiments/style_quality/README.md). This script takes the grid a trained net really draws and asks each loss how
much it costs: for every Set5/Set14 image,

- ``grid``: the exactly periodic part of the net's error (SR output minus HR, averaged over each of the scale x scale
  pixel phases, minus its mean): the pattern that repeats every ``scale`` px;
- the loss of HR + grid against HR, for the pixel loss and for each VGG layer's feature loss, divided by the loss of
  HR + white noise of the same energy (mean over a few noise draws).

A ratio well below 1 would mean the loss is nearly blind to the grid, so that nothing in training removes it; a ratio
above 1 means the loss punishes the grid more than unstructured error of the same energy. On zoo:sr_x4_perceptual
with HED features the feature layers' medians are 4.4-4.8 (experiments/style_quality/README.md): not blind.

    python experiments/sr/grid_sensitivity.py --ckpt zoo:sr_x4_perceptual --benchmarks ../shared/data/sr
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from perceptual.data.sr import SRBenchmark
from perceptual.inference.runner import load_net
from perceptual.losses import periodic_part
from perceptual.lossnet.vgg import LossNetwork

LAYERS = ("relu1_2", "relu2_2", "relu3_3")
NOISE_DRAWS = 4


def costs(hr: Tensor, hr_features: dict[str, Tensor], perturbation: Tensor, lossnet: LossNetwork) -> dict[str, float]:
    """Mean squared difference of pixels and of each layer's features between HR + perturbation and HR (whose
    features are computed once per image by the caller)."""
    perturbed = (hr + perturbation).clamp(0, 1)
    features = lossnet(perturbed[None])
    result = {"pixel": (perturbed - hr).square().mean().item()}
    for layer in LAYERS:
        result[layer] = (features[layer] - hr_features[layer]).square().mean().item()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="zoo:sr_x4_perceptual", help="a super-resolution checkpoint or zoo:<name>")
    parser.add_argument("--benchmarks", type=Path, required=True, help="folder with Set5/x<scale>, Set14/x<scale>")
    parser.add_argument("--weights", default="hed", help="loss-network weights (loss_net.weights)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    net, metadata = load_net(args.ckpt)
    scale = int(metadata.net["scale"])
    lossnet = LossNetwork(LAYERS, weights=args.weights)
    generator = torch.Generator().manual_seed(0)

    columns = ("pixel", *LAYERS)
    print(f"{args.ckpt}: loss of HR + the net's period-{scale} grid / loss of HR + white noise of the same energy")
    print("| image | grid share of the error | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    ratios: dict[str, list[float]] = {column: [] for column in columns}
    for name in ("Set5", "Set14"):
        benchmark = SRBenchmark(args.benchmarks / name / f"x{scale}", scale)
        for sample in map(benchmark.load, range(len(benchmark))):  # load: a bad pair stops with its name
            hr = sample["hr"]  # modcropped to the scale: the net's output has its size
            error = net(sample["lr"][None])[0].clamp(0, 1) - hr
            grid = periodic_part(error, scale)
            hr_features = lossnet(hr[None])
            grid_cost = costs(hr, hr_features, grid, lossnet)
            noise_costs = []
            for _ in range(NOISE_DRAWS):
                noise = torch.randn(grid.shape, generator=generator)
                noise_costs.append(costs(hr, hr_features, noise * grid.norm() / noise.norm(), lossnet))
            row = []
            for column in columns:
                ratio = grid_cost[column] / (sum(c[column] for c in noise_costs) / NOISE_DRAWS)
                ratios[column].append(ratio)
                row.append(f"{ratio:.2f}")
            share = grid.square().sum() / error.square().sum()
            print(f"| {name}/{sample['name']} | {share:.3f} | " + " | ".join(row) + " |")
    medians = {column: torch.tensor(values).median().item() for column, values in ratios.items()}
    print("| median | | " + " | ".join(f"{medians[c]:.2f}" for c in columns) + " |")
    print("grid_sensitivity " + " ".join(f"{c}={medians[c]:.3f}" for c in columns))


if __name__ == "__main__":
    main()
