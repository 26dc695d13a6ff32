"""Does the default optimiser (L-BFGS + strong-Wolfe line search) converge with a real pretrained loss network?

    .venv/bin/python experiments/gatys_comparison/lbfgs_convergence.py [--steps 60] [--size 128] \
        [--activation-scale 57.6]

The criterion is composed from ``conf/optimize_image.yaml`` exactly as ``src/optimize_image.py`` composes it
(``loss=style``, ``loss_net.weights=hed``: HED's pretrained VGG-16), content and style resized to
``--size``, start from the content photo. Prints the objective every ``--every`` iterations, its
reduction, the largest objective/initial ratio over the iterates and the wall time; writes the image
(``lbfgs_result.png``) and the loss curve (``lbfgs_curve.png``) next to this script.
``--activation-scale 57.6`` multiplies every loss-network activation by 57.6, which gives back the
Caffe scale HED's VGG-16 computes at before conversion (where the fixed-step L-BFGS this replaced
blew up); its files get an ``_x57.6`` suffix.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from perceptual.data.sample import resolve_image
from perceptual.imaging.io import save_image
from perceptual.inference.runner import resolve_device
from perceptual.losses.builder import build_criterion
from perceptual.lossnet.vgg import LossNetwork
from perceptual.optimization.pixel import initial_image, optimize_image

HERE = Path(__file__).resolve().parent
CONF = HERE.parents[1] / "conf"


def scale_activations(loss_net: LossNetwork, factor: float) -> None:
    """Multiply every activation by ``factor`` (> 0): first conv's weights and every bias times it,
    exact for a ReLU/max-pool net, as HED's conversion divides them (see perceptual.lossnet.hed)."""
    convs = [module for module in loss_net.features if isinstance(module, nn.Conv2d)]
    with torch.no_grad():
        convs[0].weight.mul_(factor)
        for conv in convs:
            conv.bias.mul_(factor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default="../shared/data/content/chicago.jpg")
    parser.add_argument("--style", default="../shared/data/styles/starry_night.jpg")
    parser.add_argument("--loss", default="style")
    parser.add_argument("--weights", default="hed", help="loss_net.weights")
    parser.add_argument("--size", type=int, default=128, help="shorter side of content and style")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=10, help="print the objective every N iterations")
    parser.add_argument("--activation-scale", type=float, default=1.0, help="57.6: Caffe-scale activations")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    overrides = [
        f"content={args.content}",
        f"style={args.style}",
        f"loss={args.loss}",
        f"loss_net.weights={args.weights}",
        f"image_size={args.size}",
        f"style_size={args.size}",
        f"steps={args.steps}",
        f"device={args.device}",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("optimize_image", overrides=overrides)
    device = resolve_device(cfg.device)
    content = resolve_image(cfg.content, "content", cfg.image_size).to(device)[None]
    criterion = build_criterion(cfg.loss, cfg.loss_net).to(device)
    if args.activation_scale != 1:
        scale_activations(criterion.loss_net, args.activation_scale)
    criterion.set_styles([resolve_image(cfg.style, "style", cfg.style_size).to(device)])
    start = initial_image(cfg.init, content, cfg.seed)
    with torch.no_grad():
        initial_terms = {name: value.item() for name, value in criterion(start, target=content).terms.items()}

    result = optimize_image(criterion, start, content, cfg.steps, cfg.optimizer, cfg.lr)
    curve = [result.initial_loss, *result.losses]
    evaluations = [0, *torch.tensor(result.evaluations).cumsum(0).tolist()]
    print(
        f"{cfg.optimizer}, {cfg.steps} iterations, {tuple(content.shape[-2:])} px, loss={args.loss}, "
        f"loss_net.weights={args.weights}, activations x{args.activation_scale:g}, {device}"
    )
    print("| iteration | objective | evaluations so far |\n|---|---|---|")
    for iteration in [*range(0, cfg.steps, args.every), cfg.steps]:
        print(f"| {iteration} | {curve[iteration]:.4g} | {evaluations[iteration]} |")
    final_terms = result.terms[-1]
    print(
        "terms (share of the objective) at iteration 0 -> last: "
        + ", ".join(
            f"{name} {initial_terms[name] / curve[0]:.1%} -> {final_terms[name] / curve[-1]:.1%}"
            for name in final_terms
        )
    )
    print(
        f"reduction: {1 - curve[-1] / curve[0]:.2%}; max objective/initial over the iterates: "
        f"{max(curve) / curve[0]:.3g}; NaN: {any(math.isnan(v) for v in curve)}"
    )
    print(f"wall time: {sum(result.seconds):.1f} s for {evaluations[-1]} objective evaluations")

    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.activation_scale == 1 else f"_x{args.activation_scale:g}"
    image_path, curve_path = args.out / f"lbfgs_result{suffix}.png", args.out / f"lbfgs_curve{suffix}.png"
    save_image(result.image[0], image_path)
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(range(len(curve)), curve, marker=".")
    axis.set(
        xlabel="L-BFGS iteration",
        ylabel="objective",
        yscale="log",
        title=f"L-BFGS + strong Wolfe, {args.loss}, {args.weights} VGG-16{suffix}, {args.size} px",
    )
    figure.tight_layout()
    figure.savefig(curve_path, dpi=100)
    print(f"wrote {image_path} and {curve_path}")


if __name__ == "__main__":
    main()
