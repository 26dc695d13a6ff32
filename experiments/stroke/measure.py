"""Strokes that keep their size at any resolution (``stroke=``), measured on the zoo style nets.

    PYTHONPATH=src .venv/bin/python experiments/stroke/measure.py [--nets starry_night candy mosaic] [--photos chicago]

For each net and photo, with the photo resized to ``--small`` and ``--large`` px on its longer side (the large one is
an upscale of the 712 px original, which is what a phone photo of a scene looks like to a net trained on 256 px crops):

1. Resolution independence: the Gram distance (VGG-16 relu1_2..relu4_3, HED weights) between the large output
   downscaled to the small size and the small output, plain (``stroke=none``) and with ``stroke=auto``; the ratio
   auto / plain (target <= 0.5).
2. Control: the dominant stroke wavelength of the large output for each ``--factors`` value
   (:func:`perceptual.evaluation.strokes.stroke_wavelength`: the peak of the per-octave spectrum of the
   stylised-minus-photo luma once the part the photo explains is taken out; output and photo brought to the working
   resolution and back), and its growth relative to ``stroke=1`` divided by the factor (target: 1 within 20 %). The
   same for a recolouring with no strokes painted at each working size and brought back by the same stage (what the
   measure reads when there are no strokes), the texture's RMS at ``stroke=1`` (how much there is to read), and the
   painting's own wavelength at its working size (whether the net paints the same strokes at every working size).
3. Detail kept: at full resolution, for plain stylisation and ways of bringing the ``stroke=auto`` painting to the
   photo's size, the correlation of HED edge maps with the photo's (target: the pipeline's no worse than plain's by
   more than 0.05), the edge-halo figure (:func:`perceptual.evaluation.artefacts.edge_halo`, at full resolution) and
   the strokes kept: the RMS of the stroke texture at the working size, relative to the painting's own (a method that
   averages the strokes away scores low).

Writes ``resolution.jpg`` (small output | large output downscaled, plain and auto), ``factors.jpg`` (a crop of the
large output for each factor) and ``detail.jpg`` (the same full-resolution crop: plain | re-injection alone | joint
bilateral upsampling | the pipeline | a guided filter).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.utils import make_grid

from perceptual.evaluation.artefacts import edge_halo
from perceptual.evaluation.edges import HEDEdges
from perceptual.evaluation.quality import STYLE_LAYERS, gram_distance, pearson
from perceptual.evaluation.strokes import TEXTURE_RADIUS, guided_coefficients, stroke_texture, stroke_wavelength
from perceptual.imaging.color import luma
from perceptual.imaging.io import load_image, save_image
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.inference.runner import Runner, load_net
from perceptual.inference.stroke import (
    DETAIL_GAIN,
    joint_bilateral_upsample,
    photo_detail,
    reinject_detail,
    resize_bicubic,
    snap_upsample,
    working_size,
)
from perceptual.losses.gram import gram_matrix
from perceptual.lossnet.vgg import LossNetwork

HERE = Path(__file__).resolve().parent
CONTENT = HERE.parents[2] / "shared" / "data" / "content"
CROP = (slice(None), slice(480, 480 + 384), slice(640, 640 + 512))  # of the large photo: the towers' outlines
PAINTED_RADIUS = 16  # working px: the fit's window for the painting's own wavelength, the same at every factor
OVERVIEW_SCALE = 0.75  # resolution.jpg is a 512 px overview; shrunk to stay under 500 KB
Upsampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (photo, working-size painting) -> full size


def longer_side(image: torch.Tensor, side: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = side / max(height, width)
    return resize_bicubic(image, (round(height * scale), round(width * scale)))


def guided_upsampling(photo: torch.Tensor, stylised: torch.Tensor, radius: int = 4, eps: float = 1e-2) -> torch.Tensor:
    """Fast guided filter upsampling (He & Sun 2015) of ``stylised`` with the photo's luma as guide: the linear
    coefficients fitted at the working size in (2 radius + 1)^2 windows, upsampled and applied to the full photo."""
    guide = luma(resize_bicubic(photo, tuple(stylised.shape[-2:])))[0, 0].double().numpy()
    a, b = guided_coefficients(guide, stylised[0].double().numpy(), radius, eps)
    size = tuple(photo.shape[-2:])
    a, b = (resize_bicubic(torch.from_numpy(x)[None].float(), size) for x in (a, b))
    return (a * luma(photo) + b).clamp(0, 1)


def with_detail(upsample: Upsampler, gain: float) -> Upsampler:
    """``upsample`` plus ``gain`` x the photo's detail above the working resolution, as a grey shift."""
    return lambda photo, painted: (
        upsample(photo, painted) + gain * photo_detail(photo, tuple(painted.shape[-2:]))
    ).clamp(0, 1)


def bicubic(photo: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
    return resize_bicubic(painted, tuple(photo.shape[-2:]))


UPSAMPLERS: dict[str, Upsampler] = {
    "bicubic alone": with_detail(bicubic, 0.0),
    "re-injection x1 (before)": with_detail(bicubic, 1.0),
    f"re-injection x{DETAIL_GAIN:g}": with_detail(bicubic, DETAIL_GAIN),
    f"joint bilateral + x{DETAIL_GAIN:g}": with_detail(lambda p, s: joint_bilateral_upsample(p, s)[0], DETAIL_GAIN),
    "snap + x1": with_detail(snap_upsample, 1.0),
    f"snap + x{DETAIL_GAIN:g} (stroke=auto)": reinject_detail,
    "guided filter": guided_upsampling,
}
PICTURED = ("re-injection x1 (before)", f"joint bilateral + x{DETAIL_GAIN:g}", f"snap + x{DETAIL_GAIN:g} (stroke=auto)",
            "guided filter")  # fmt: skip


def through(painted: torch.Tensor, *images: torch.Tensor) -> list[torch.Tensor]:
    """``images`` [1,3,H,W] brought to ``painted``'s working size and back, as [3,H,W]: what the measure of the
    stroke wavelength reads (see :mod:`perceptual.evaluation.strokes`)."""
    return [resize_bicubic(resize_bicubic(x, tuple(painted.shape[-2:])), tuple(x.shape[-2:]))[0] for x in images]


def painted_wavelength(painted: torch.Tensor, photo: torch.Tensor) -> float:
    """The painting's own stroke wavelength in working px, against the photo at the working size, with the same
    :data:`PAINTED_RADIUS` at every factor: a net that paints the same strokes at every working size reads the same
    here, so a change with the factor is the net's, not the stage's or the full-resolution measure's."""
    photo_low = resize_bicubic(photo, tuple(painted.shape[-2:]))[0]
    return stroke_wavelength(painted[0].clamp(0, 1), photo_low, PAINTED_RADIUS)


def recolour(images: torch.Tensor) -> torch.Tensor:
    """A painting without strokes: a fixed per-pixel colour map (channels swapped and bent)."""
    images = images.clamp(0, 1)
    return torch.stack([images[:, 2].sqrt(), images[:, 0].square(), 1 - images[:, 1]], dim=1)


def strokes_kept(output: torch.Tensor, photo: torch.Tensor, painted: torch.Tensor) -> float:
    """RMS of the stroke texture of ``output`` brought to the working size, relative to that of the painting."""
    low = tuple(painted.shape[-2:])
    radius = round(TEXTURE_RADIUS * min(low) / min(photo.shape[-2:]))
    photo_low = resize_bicubic(photo, low)[0]
    texture = lambda image: stroke_texture(image, photo_low, radius).std()  # noqa: E731
    return float(texture(resize_bicubic(output, low)[0]) / texture(painted[0].clamp(0, 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["starry_night", "candy", "mosaic"])
    parser.add_argument("--photos", nargs="+", default=["chicago"])
    parser.add_argument("--small", type=int, default=512)
    parser.add_argument("--large", type=int, default=2048)
    parser.add_argument("--factors", nargs="+", type=float, default=[0.5, 1.0, 2.0, 4.0])
    args = parser.parse_args()
    if 1.0 not in args.factors:
        parser.error("--factors must include 1 (growth is relative to stroke=1)")
    torch.set_grad_enabled(False)
    vgg = LossNetwork(STYLE_LAYERS, weights="hed")
    edges = HEDEdges()
    grams = lambda image: {layer: gram_matrix(f) for layer, f in vgg(image, STYLE_LAYERS).items()}  # noqa: E731
    rows: dict[str, list[torch.Tensor]] = {"resolution": [], "factors": [], "detail": []}
    tables: dict[str, list[str]] = {"resolution": [], "control": [], "detail": []}
    for photo_name in args.photos:
        photo = load_image(CONTENT / f"{photo_name}.jpg")[None]
        small, large = longer_side(photo, args.small), longer_side(photo, args.large)
        full = tuple(large.shape[-2:])
        photo_edges = edges(large)
        for name in ["recolour (no strokes)", *args.nets]:
            if name.startswith("recolour"):
                net, size, paint = None, 256, recolour
            else:
                net, metadata = load_net(f"zoo:{name}")
                size, paint = metadata.training_size, Runner(net, device="cpu")
            painted = {f: paint(resize_bicubic(large, working_size(full, size, f))) for f in args.factors}
            out = {f: reinject_detail(large, p) for f, p in painted.items()}
            waves = {f: stroke_wavelength(*through(painted[f], out[f], large)) for f in args.factors}
            rms = stroke_texture(*through(painted[1.0], out[1.0], large)).std()
            own = {f: painted_wavelength(p, large) for f, p in painted.items()}
            tables["control"].append(
                f"| {name} | {photo_name} | " + " / ".join(f"{waves[f]:.1f}" for f in args.factors) + " | "
                + " / ".join(f"{waves[f] / waves[1.0] / f:.2f}" for f in args.factors) + f" | {rms:.4f} | "
                + " / ".join(f"{own[f]:.1f}" for f in args.factors) + " |"
            )  # fmt: skip
            print(tables["control"][-1], flush=True)
            if net is None:
                continue
            plain = build_pipeline(net, PipelineOptions(device="cpu"), size)
            auto = build_pipeline(net, PipelineOptions(device="cpu", stroke="auto"), size)
            styled = {
                (kind, scale): apply(image)
                for kind, apply in (("plain", plain), ("auto", auto))
                for scale, image in (("small", small), ("large", large))
            }
            hw = tuple(small.shape[-2:])
            distance = {
                kind: gram_distance(
                    vgg(resize_bicubic(styled[kind, "large"], hw), STYLE_LAYERS), grams(styled[kind, "small"])
                ).item()
                for kind in ("plain", "auto")
            }
            tables["resolution"].append(
                f"| {name} | {photo_name} | {size} | {distance['plain']:.3g} | {distance['auto']:.3g} | "
                f"**{distance['auto'] / distance['plain']:.3f}** |"
            )
            print(tables["resolution"][-1], flush=True)
            outputs = {"plain": styled["plain", "large"]} | {
                kind: up(large, painted[1.0]) for kind, up in UPSAMPLERS.items()
            }
            figures = {
                kind: (
                    pearson(edges(image.clamp(0, 1)), photo_edges).item(),
                    edge_halo(image[0].clamp(0, 1), large[0]),
                    "" if kind == "plain" else f"{strokes_kept(image, large, painted[1.0]):.2f}",
                )
                for kind, image in outputs.items()
            }
            base = figures["plain"][0]
            for kind, (corr, halo, kept) in figures.items():
                drop = "" if kind == "plain" else f"{base - corr:+.3f}"
                tables["detail"].append(f"| {name} | {kind} | {corr:.3f} | {drop} | {halo:.3f} | {kept} |")
                print(tables["detail"][-1], flush=True)
            rows["resolution"] += [
                styled["plain", "small"][0],
                resize_bicubic(styled["plain", "large"], hw)[0],
                styled["auto", "small"][0],
                resize_bicubic(styled["auto", "large"], hw)[0],
            ]
            rows["factors"] += [large[0][CROP]] + [out[f][0][CROP] for f in args.factors]
            rows["detail"] += [outputs["plain"][0][CROP]] + [outputs[kind][0][CROP] for kind in PICTURED]
    print(
        "\n| net | photo | training px | Gram dist. plain | Gram dist. auto | auto / plain |\n|---|---|---|---|---|---|"
    )
    print("\n".join(tables["resolution"]))
    factors = " / ".join(f"{f:g}" for f in args.factors)
    print(
        f"\n| painting | photo | stroke wavelength (px) at {factors} | growth / factor | texture RMS at 1 | "
        "the painting's own wavelength (working px) |"
    )
    print("|---|---|---|---|---|---|\n" + "\n".join(tables["control"]))
    print("\n| net | to full size | edge corr. | drop vs plain | halo | strokes kept |\n|---|---|---|---|---|---|")
    print("\n".join(tables["detail"]))
    overview = make_grid(rows["resolution"], nrow=4, padding=4, pad_value=1.0)[None]
    overview = resize_bicubic(overview, tuple(round(side * OVERVIEW_SCALE) for side in overview.shape[-2:]))
    save_image(overview[0].clamp(0, 1), HERE / "resolution.jpg")
    grid = make_grid(rows["factors"], nrow=1 + len(args.factors), padding=4, pad_value=1.0)
    save_image(grid, HERE / "factors.jpg")
    save_image(make_grid(rows["detail"], nrow=1 + len(PICTURED), padding=4, pad_value=1.0), HERE / "detail.jpg")


if __name__ == "__main__":
    main()
