"""Strokes that keep their size at any resolution (``stroke=``), measured on the zoo style nets.

    PYTHONPATH=src .venv/bin/python experiments/stroke/measure.py [--nets starry_night candy mosaic] [--photos chicago]

For each net and photo, with the photo resized to ``--small`` and ``--large`` px on its longer side (the large one is
an upscale of the 712 px original, which is what a phone photo of a scene looks like to a net trained on 256 px crops):

1. Resolution independence: the Gram distance (VGG-16 relu1_2..relu4_3, HED weights) between the large output
   downscaled to the small size and the small output, plain (``stroke=none``) and with ``stroke=auto``; the ratio
   auto / plain (target <= 0.5).
2. Control: the dominant wavelength of the stylised-minus-photo luma on the large photo (the peak of the radially
   averaged power spectrum, as power per octave) for each ``--factors`` value, relative to ``stroke=1``
   (target: proportional to the factor within 20 %).
3. Detail kept: the correlation of the HED edge maps of the large output and the large photo, plain, with
   ``stroke=auto``, with ``stroke=auto`` without the detail re-injection (bicubic upsampling alone), and with a
   guided filter in its place (target: auto no worse than plain by more than 0.05).

Writes ``resolution.jpg`` (small output | large output downscaled, plain and auto), ``factors.jpg`` (a crop of the
large output for each factor) and ``detail.jpg`` (a full-resolution crop: plain | auto without and with the
detail | guided filter).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from perceptual.evaluation.edges import HEDEdges
from perceptual.evaluation.quality import STYLE_LAYERS, gram_distance, pearson
from perceptual.imaging.color import luma
from perceptual.imaging.io import load_image, save_image
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.inference.runner import Runner, load_net
from perceptual.inference.stroke import resize_bicubic, working_size
from perceptual.losses.gram import gram_matrix
from perceptual.lossnet.vgg import LossNetwork

HERE = Path(__file__).resolve().parent
CONTENT = HERE.parents[2] / "shared" / "data" / "content"


def longer_side(image: torch.Tensor, side: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = side / max(height, width)
    return resize_bicubic(image, (round(height * scale), round(width * scale)))


def dominant_wavelength(residual: torch.Tensor) -> float:
    """Dominant wavelength (px) of ``residual`` [H, W] from its radially averaged power spectrum (Hann-windowed):
    the power per octave k^2 P(k) in 1/8-octave bins from 4 cycles per image to Nyquist, and the wavelength at its
    centroid in log frequency (a shift of the whole spectrum by a factor moves it by that factor exactly; the peak
    of a broad spectrum jumps between bins)."""
    height, width = residual.shape
    window = torch.hann_window(height, periodic=False)[:, None] * torch.hann_window(width, periodic=False)[None]
    power = torch.fft.fft2((residual - residual.mean()) * window).abs().square()
    fy, fx = torch.fft.fftfreq(height)[:, None], torch.fft.fftfreq(width)[None]
    k = (fy.square() + fx.square()).sqrt().flatten()
    low, high = 4 / min(height, width), 0.5
    edges = torch.logspace(math.log2(low), math.log2(high), int(8 * math.log2(high / low)) + 1, base=2)
    index = torch.bucketize(k, edges)
    per_octave = k.square() * power.flatten()
    levels = torch.stack([per_octave[index == i].mean() for i in range(1, len(edges))]).nan_to_num(0.0)
    log_centres = (edges[1:] * edges[:-1]).sqrt().log()
    return math.exp(-(levels * log_centres).sum().item() / levels.sum().item())


def guided_upsampling(photo: torch.Tensor, stylised: torch.Tensor, radius: int = 4, eps: float = 1e-2) -> torch.Tensor:
    """The alternative measured against: fast guided filter upsampling (He & Sun 2015) of ``stylised`` with the
    photo's luma as guide; linear coefficients fitted at the working size in (2 radius + 1)^2 windows."""

    def box(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)

    guide = luma(resize_bicubic(photo, tuple(stylised.shape[-2:])))
    mean_i, mean_p = box(guide), box(stylised)
    a = (box(guide * stylised) - mean_i * mean_p) / (box(guide * guide) - mean_i.square() + eps)
    b = mean_p - a * mean_i
    size = tuple(photo.shape[-2:])
    return (resize_bicubic(box(a), size) * luma(photo) + resize_bicubic(box(b), size)).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["starry_night", "candy", "mosaic"])
    parser.add_argument("--photos", nargs="+", default=["chicago"])
    parser.add_argument("--small", type=int, default=512)
    parser.add_argument("--large", type=int, default=2048)
    parser.add_argument("--factors", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    vgg = LossNetwork(STYLE_LAYERS, weights="hed")
    edges = HEDEdges()
    grams = lambda image: {layer: gram_matrix(f) for layer, f in vgg(image, STYLE_LAYERS).items()}  # noqa: E731
    rows = {"resolution": [], "factors": [], "detail": []}
    print("| net | photo | training px | Gram dist. plain | Gram dist. auto | auto / plain | "
          + " | ".join(f"wavelength x{f:g} (px)" for f in args.factors) + " | growth / factor | "
          "edge corr. plain | auto | auto, no re-injection | auto, guided filter instead |")  # fmt: skip
    print("|---" * (10 + len(args.factors)) + "|")
    for name in args.nets:
        net, metadata = load_net(f"zoo:{name}")
        size = metadata.training_size
        plain = build_pipeline(net, PipelineOptions(device="cpu"), size)
        runner = Runner(net, device="cpu")

        def stroke(factor: float) -> object:
            return build_pipeline(net, PipelineOptions(device="cpu", stroke=factor), size)  # noqa: B023

        for photo_name in args.photos:
            photo = load_image(CONTENT / f"{photo_name}.jpg")[None]
            small, large = longer_side(photo, args.small), longer_side(photo, args.large)
            out = {
                ("plain", "small"): plain(small),
                ("plain", "large"): plain(large),
                ("auto", "small"): stroke(1.0)(small),
            }
            by_factor = {f: stroke(f)(large) for f in args.factors}
            out["auto", "large"] = by_factor.get(1.0, stroke(1.0)(large))
            hw = tuple(small.shape[-2:])
            distance = {
                kind: gram_distance(
                    vgg(resize_bicubic(out[kind, "large"], hw), STYLE_LAYERS), grams(out[kind, "small"])
                ).item()
                for kind in ("plain", "auto")
            }
            photo_luma = luma(large)[0, 0]
            waves = {f: dominant_wavelength(luma(o)[0, 0] - photo_luma) for f, o in by_factor.items()}
            base = waves[1.0] if 1.0 in waves else waves[args.factors[0]] / args.factors[0]
            growth = [waves[f] / base / f for f in args.factors]
            painted = runner(resize_bicubic(large, working_size(large.shape[-2:], size, 1.0)))
            no_detail = resize_bicubic(painted, large.shape[-2:]).clamp(0, 1)
            guided = guided_upsampling(large, painted)
            photo_edges = edges(large)
            corr = {
                kind: pearson(edges(image.clamp(0, 1)), photo_edges).item()
                for kind, image in (
                    ("plain", out["plain", "large"]),
                    ("auto", out["auto", "large"]),
                    ("bare", no_detail),
                    ("guided", guided),
                )
            }
            figures = [
                f"{distance['plain']:.3g}",
                f"{distance['auto']:.3g}",
                f"{distance['auto'] / distance['plain']:.3f}",
            ]
            figures += [f"{waves[f]:.1f}" for f in args.factors] + [" / ".join(f"{g:.2f}" for g in growth)]
            figures += [f"{corr[kind]:.3f}" for kind in ("plain", "auto", "bare", "guided")]
            print(f"| {name} | {photo_name} | {size} | " + " | ".join(figures) + " |", flush=True)
            rows["resolution"] += [
                out["plain", "small"][0],
                resize_bicubic(out["plain", "large"], hw)[0],
                out["auto", "small"][0],
                resize_bicubic(out["auto", "large"], hw)[0],
            ]
            crop = (slice(None), slice(large.shape[-2] // 3, large.shape[-2] // 3 + 512), slice(600, 600 + 768))
            rows["factors"] += [large[0][crop]] + [by_factor[f][0][crop] for f in args.factors]
            rows["detail"] += [
                out["plain", "large"][0][crop],
                no_detail[0][crop],
                out["auto", "large"][0][crop],
                guided[0][crop],
            ]
    save_image(make_grid(rows["resolution"], nrow=4, padding=4, pad_value=1.0), HERE / "resolution.jpg")
    save_image(make_grid(rows["factors"], nrow=1 + len(args.factors), padding=4, pad_value=1.0), HERE / "factors.jpg")
    save_image(make_grid(rows["detail"], nrow=4, padding=4, pad_value=1.0), HERE / "detail.jpg")


if __name__ == "__main__":
    main()
