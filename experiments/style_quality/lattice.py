"""Is a net's regular texture its stride lattice? Where its texture's spectrum peaks, and what bilinear upsampling does.

The most periodic zoo style nets (starry_night, mosaic) and the x4 feature-loss SR net paint a regular pattern. This
script asks whether it is locked to the net's stride (two x2 upsamplings: 4 px), the period at which nearest + conv
upsampling leaves block edges, and what becomes of it when the same weights run with bilinear interpolation instead
(``init_net_options`` rebuilds the net so, as a fine-tuning run would start):

- style nets (``--photos``): per photo, the strongest peaks of the output's texture spectrum (period and direction),
  then the judge's lattice, periodicity and halo figures with the net as trained and with each ``--upsample`` mode;
- super-resolution nets (``--benchmarks``): the grid figure (mean and worst image), RGB PSNR and sharpness over
  Set5 and Set14 with each mode.

    python experiments/style_quality/lattice.py --ckpt zoo:starry_night --photos ../shared/data/content
    python experiments/style_quality/lattice.py --ckpt zoo:sr_x4_perceptual --benchmarks ../shared/data/sr

Swapping the interpolation of a trained net is a probe, not a fix: the weights were learnt for the other one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from perceptual.data.sr import SRBenchmark
from perceptual.evaluation.artefacts import edge_halo, grid_strength, lattice, periodicity, texture_spectrum
from perceptual.evaluation.metrics import psnr, sharpness_y
from perceptual.imaging.io import list_images, load_image
from perceptual.inference.runner import load_net
from perceptual.nets.base import TransformNet
from perceptual.training import with_options

PEAKS = 3


def texture_peaks(image: Tensor, count: int = PEAKS) -> list[str]:
    """The ``count`` strongest peaks of the high-passed luma spectrum of ``image`` [3,H,W] (one of each mirrored
    pair), as 'period px at angle' with their height over the spectrum's mean."""
    power, band = texture_spectrum(image)
    power[~band] = 0.0
    mean = power[band].mean()
    fy, fx = np.fft.fftfreq(power.shape[0]), np.fft.fftfreq(power.shape[1])
    peaks = []
    for index in np.argsort(power.ravel())[::-1][: 2 * count : 2]:  # a real image's spectrum is symmetric
        row, col = np.unravel_index(index, power.shape)
        period = 1.0 / np.hypot(fy[row], fx[col])
        angle = np.degrees(np.arctan2(fy[row], fx[col])) % 180
        peaks.append(f"{period:.2f} px at {angle:.0f} deg (x{power[row, col] / mean:.0f})")
    return peaks


def variants(net: TransformNet, modes: list[str]) -> dict[str, TransformNet]:
    """The net as trained and rebuilt with each other upsampling mode, the weights kept."""
    trained = net.config()["upsample"]
    nets = {f"{trained} (trained)": net}
    nets.update({mode: with_options(net, {"upsample": mode}).eval() for mode in modes if mode != trained})
    return nets


def style_report(net: TransformNet, modes: list[str], photos: Path, size: int) -> None:
    stride = net.capabilities.stride
    images = {path.stem: TF.resize(load_image(path), size, antialias=True) for path in list_images(photos)}
    outputs = {
        label: {name: candidate(photo[None])[0].clamp(0, 1) for name, photo in images.items()}
        for label, candidate in variants(net, modes).items()
    }
    print(f"strongest texture peaks of the net's output (stride {stride} px):")
    for name, output in next(iter(outputs.values())).items():  # the net as trained
        print(f"  {name}: " + "; ".join(texture_peaks(output)))
    print("| upsampling | lattice | periodicity | halo |")
    print("|---|---:|---:|---:|")
    for label, by_photo in outputs.items():
        rows = [
            (lattice(output, images[name], stride), periodicity(output, images[name]), edge_halo(output, images[name]))
            for name, output in by_photo.items()
        ]
        mean_lattice, mean_periodicity, mean_halo = np.mean(rows, axis=0)
        print(f"| {label} | {mean_lattice:.2f} | {mean_periodicity:.2f} | {mean_halo:+.3f} |")


def sr_report(net: TransformNet, modes: list[str], benchmarks: Path) -> None:
    scale = int(net.config()["scale"])
    samples = [
        sample
        for name in ("Set5", "Set14")
        for benchmark in [SRBenchmark(benchmarks / name / f"x{scale}", scale)]
        for sample in map(benchmark.load, range(len(benchmark)))
    ]
    print(f"{len(samples)} Set5/Set14 images, x{scale}")
    print("| upsampling | grid (mean) | grid (worst) | RGB PSNR | sharpness |")
    print("|---|---:|---:|---:|---:|")
    for label, candidate in variants(net, modes).items():
        grids, psnrs, sharpness = [], [], []
        for sample in samples:
            hr = sample["hr"]
            output = candidate(sample["lr"][None])[0].clamp(0, 1)
            grids.append(grid_strength(output, scale))
            psnrs.append(psnr(output[None], hr[None], data_range=1.0).item())
            sharpness.append(sharpness_y(output[None], hr[None], scale).mean().item())
        figures = f"{np.mean(grids):.2f} | {np.max(grids):.2f} | {np.mean(psnrs):.2f} | {np.mean(sharpness):.3f}"
        print(f"| {label} | {figures} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a style or super-resolution checkpoint, or zoo:<name>")
    parser.add_argument("--photos", type=Path, help="held-out photos (style nets)")
    parser.add_argument("--size", type=int, default=256, help="shorter side of the photos")
    parser.add_argument("--benchmarks", type=Path, help="folder with Set5/x<scale>, Set14/x<scale> (SR nets)")
    parser.add_argument("--upsample", nargs="+", default=["nearest", "bilinear"], help="modes to compare")
    args = parser.parse_args()
    if (args.photos is None) == (args.benchmarks is None):
        parser.error("pass --photos <folder> for a style net, or --benchmarks <folder> for a super-resolution net")
    torch.set_grad_enabled(False)
    net, _ = load_net(args.ckpt)
    net.eval()
    if args.photos is not None:
        style_report(net, args.upsample, args.photos, args.size)
    else:
        sr_report(net, args.upsample, args.benchmarks)


if __name__ == "__main__":
    main()
