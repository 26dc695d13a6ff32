"""Colour preservation and strength on the zoo style nets and the held-out content photos.

    PYTHONPATH=src .venv/bin/python experiments/style_controls/measure.py [--size 512] [--float-input]

Prints, per net and photo, the mean |dCb| and |dCr| (8-bit levels, MATLAB YCbCr) of the saved 8-bit output against
the input, for the plain stylisation and with ``preserve_color``, plus the share of pixels whose luma had to be
clamped to keep the colour; then the mean distance to the input for strength 0..1 (with and without colour
preservation); and writes ``controls.jpg``: photo | stylised | preserve_color | strength 0.5 | both, one row per net.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import make_grid

from perceptual.imaging.color import quantize, rgb_to_y, rgb_to_ycbcr
from perceptual.imaging.io import load_image
from perceptual.inference.postprocess import StyleControls
from perceptual.inference.runner import Runner, load_net

HERE = Path(__file__).resolve().parent
CONTENT = HERE.parents[2] / "shared" / "data" / "content"
PHOTOS = ("chicago", "amber", "hoovertowernight")
NETS = ("starry_night", "candy")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def chroma_change(output: torch.Tensor, photo: torch.Tensor) -> tuple[float, float]:
    """Mean |dCb|, |dCr| in 8-bit levels of the 8-bit ``output`` against ``photo``."""
    change = (rgb_to_ycbcr(quantize(output)) - rgb_to_ycbcr(photo)).abs().mean(dim=(-2, -1)).flatten()
    return change[1].item(), change[2].item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="shorter side of the photos")
    parser.add_argument(
        "--float-input", action="store_true", help="feed the resized photos unrounded (default: as 8-bit images)"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    as_input = (lambda image: image) if args.float_input else quantize
    photos = {
        name: as_input(TF.resize(load_image(CONTENT / f"{name}.jpg"), args.size, antialias=True))[None]
        for name in PHOTOS
    }
    runners = {name: Runner(load_net(f"zoo:{name}")[0], device="cpu") for name in NETS}
    keep = StyleControls(preserve_color=True)

    print("| net | photo | stylised dCb / dCr | preserve_color dCb / dCr | luma clamped (% px) |")
    print("|---|---|---|---|---:|")
    styled = {}
    for net, runner in runners.items():
        for name, photo in photos.items():
            styled[net, name] = out = runner(photo)
            kept = keep(photo, out)
            clamped = ((rgb_to_y(kept) - rgb_to_y(out)).abs() > 0.5).float().mean().item() * 100
            plain, preserved = chroma_change(out, photo), chroma_change(kept, photo)
            print(
                f"| {net} | {name} | {plain[0]:.2f} / {plain[1]:.2f} | **{preserved[0]:.2f} / {preserved[1]:.2f}** "
                f"| {clamped:.1f} |"
            )

    print("\nmean |output - input| (8-bit levels), chicago; in brackets: relative to strength 1")
    print("| net | preserve_color | " + " | ".join(f"s = {s}" for s in STRENGTHS) + " |")
    print("|---|---|" + "---:|" * len(STRENGTHS))
    photo = photos["chicago"]
    for net in NETS:
        for preserve in (False, True):
            distances = [
                (quantize(StyleControls(s, preserve)(photo, styled[net, "chicago"])) - photo).abs().mean().item() * 255
                for s in STRENGTHS
            ]
            cells = " | ".join(f"{d:.2f} ({d / distances[-1]:.3f})" for d in distances)
            print(f"| {net} | {preserve} | {cells} |")

    tiles = []
    small = quantize(TF.resize(photo, 256, antialias=True))
    for runner in runners.values():
        out = runner(small)
        tiles += [small, out, keep(small, out), StyleControls(0.5)(small, out), StyleControls(0.5, True)(small, out)]
    grid = make_grid(torch.cat(tiles), nrow=5, padding=4, pad_value=1.0)
    TF.to_pil_image(grid).save(HERE / "controls.jpg", quality=85)
    print(f"\nwrote {HERE / 'controls.jpg'}")


if __name__ == "__main__":
    main()
