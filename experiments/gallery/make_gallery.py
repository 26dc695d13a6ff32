"""The README gallery, made from the model zoo and the shared evaluation images.

    python experiments/gallery/make_gallery.py [--optimisation-steps 100] [--only style sr stylebank optimisation]

Writes compact JPEGs into experiments/gallery/:
- ``style_transfer.jpg``: each held-out photo beside the zoo style nets' outputs (200 px shorter side);
- ``feedforward_vs_optimisation.jpg``: chicago, zoo:starry_night's one pass, and L-BFGS from noise on the criterion
  the net was trained with (rebuilt from its checkpoint, as objective parity does);
- ``super_resolution.jpg`` / ``super_resolution_x8.jpg``: crops of Set5/Set14: bicubic | zoo:sr_x<s>_pixel |
  zoo:sr_x<s>_perceptual | HR (each made only when both entries of its scale are in the zoo); ``--sr-compare OUT
  label=ckpt ...`` writes the same crops for any checkpoints instead (before/after figures);
- ``stylebank.jpg``: zoo:stylebank on the held-out photos, one column per bank (the last one learnt incrementally,
  encoder and decoder frozen), then a linear fusion of two banks and a region-wise (k-means) fusion of two banks
  (made only when the entry is in the zoo).
Needs the style zoo entries, ../shared/data and the HED weights (for the optimisation baseline).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchvision.transforms.v2 import functional as TF

from perceptual.checkpoints import build_net, read_checkpoint
from perceptual.evaluation.parity import lbfgs_curve, objective, rebuild_criterion
from perceptual.imaging.io import load_image
from perceptual.imaging.resize import imresize
from perceptual.inference.fusion import with_fusion
from perceptual.inference.runner import Runner, load_net
from perceptual.locations import entry_names
from perceptual.training import flush_denormals

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared" / "data"
PHOTOS = ("chicago", "amber", "hoovertowernight")
STYLE_NETS = ("starry_night", "candy", "mosaic", "udnie", "the_scream", "rain_princess")
STYLE_PHOTO_SIZE = 200
SR_SCALES = (4, 8)
# (benchmark image, top, left, side) of the SR crops, in HR pixels
SR_CROPS = (
    ("Set5/x4/img_003", 64, 96, 96),
    ("Set14/x4/img_001", 160, 180, 96),
    ("Set14/x4/img_005", 40, 100, 96),
    ("Set14/x4/img_013", 100, 60, 96),  # flat colour, where an upsampling grid shows first
)
STYLEBANK_NET = "stylebank"
# (label, stylize options) of the fusion columns: two contrasting banks half and half, and one per colour region
STYLEBANK_FUSIONS = (
    ("banks 1+4, linear 0.5/0.5", {"banks": [1, 4], "weights": [0.5, 0.5]}),
    ("banks 1|4, k-means regions", {"banks": [1, 4], "regions": "kmeans"}),
)
STYLEBANK_PHOTO_SIZE = 160
LABEL_HEIGHT = 18


def to_pil(image: torch.Tensor) -> Image.Image:
    return TF.to_pil_image(image.clamp(0, 1))


def grid(rows: list[list[Image.Image]], labels: list[str], gap: int = 4) -> Image.Image:
    """Images in rows (equal heights per row) under a row of column labels."""
    widths = [max(row[c].width for row in rows) for c in range(len(labels))]
    height = LABEL_HEIGHT + sum(max(im.height for im in row) + gap for row in rows)
    canvas = Image.new("RGB", (sum(widths) + gap * (len(widths) - 1), height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for label, width in zip(labels, widths):
        draw.text((x + 4, 3), label, fill="black")
        x += width + gap
    y = LABEL_HEIGHT
    for row in rows:
        x = 0
        for image, width in zip(row, widths):
            canvas.paste(image, (x, y))
            x += width + gap
        y += max(im.height for im in row) + gap
    return canvas


def photo(name: str, size: int = 256) -> torch.Tensor:
    return TF.resize(load_image(SHARED / "content" / f"{name}.jpg"), size, antialias=True)


def style_transfer() -> None:
    runners = {name: Runner(load_net(f"zoo:{name}")[0], device="cpu") for name in STYLE_NETS}
    rows = []
    for name in PHOTOS:
        image = photo(name, STYLE_PHOTO_SIZE)
        rows.append([to_pil(image)] + [to_pil(runners[n](image[None])[0]) for n in STYLE_NETS])
    styles = [to_pil(TF.resize(load_image(SHARED / "styles" / f"{n}.jpg"), 96, antialias=True)) for n in STYLE_NETS]
    blank = Image.new("RGB", (8, 96), "white")
    grid([[blank, *styles]] + rows, ["photo", *[f"zoo:{n}" for n in STYLE_NETS]]).save(
        HERE / "style_transfer.jpg", quality=85
    )


def feedforward_vs_optimisation(steps: int, net: str = "starry_night") -> None:
    image = photo("chicago")[None]
    checkpoint = read_checkpoint(f"zoo:{net}")
    criterion = rebuild_criterion(checkpoint)  # the objective the net was trained on
    feedforward = Runner(build_net(checkpoint), device="cpu")(image)
    with torch.enable_grad():  # main() turns gradients off for the nets; L-BFGS needs them
        curve = lbfgs_curve(criterion, image, steps)
    with torch.no_grad():
        net_loss = objective(criterion, feedforward, image)
    labels = [
        "photo",
        f"zoo:{net}, one pass (objective {net_loss:.3g})",
        f"L-BFGS x{steps} from noise (objective {curve.losses[-1]:.3g})",
    ]
    grid([[to_pil(image[0]), to_pil(feedforward[0]), to_pil(curve.image[0])]], labels).save(
        HERE / "feedforward_vs_optimisation.jpg", quality=85
    )


def super_resolution(scale: int, columns: list[tuple[str, str]], path: Path, zoom: int = 2) -> None:
    """Crops at ``scale``: bicubic | each (label, checkpoint or zoo:name) column | HR; x4 from the benchmark's own LR
    images, other scales from its HR by MATLAB bicubic."""
    nets = [Runner(load_net(ckpt)[0], device="cpu") for _, ckpt in columns]
    rows = []
    for stem, top, left, side in SR_CROPS:
        hr = load_image(SHARED / "sr" / f"{stem}_SRF_4_HR.png")
        hr = hr[:, : hr.shape[-2] // scale * scale, : hr.shape[-1] // scale * scale]
        lr = load_image(SHARED / "sr" / f"{stem}_SRF_4_LR.png") if scale == 4 else imresize(hr, 1 / scale, uint8=True)
        candidates = [imresize(lr, scale).clamp(0, 1)] + [net(lr[None])[0] for net in nets] + [hr]
        crops = [to_pil(c[:, top : top + side, left : left + side]) for c in candidates]
        rows.append([c.resize((side * zoom, side * zoom), Image.NEAREST) for c in crops])
    grid(rows, ["bicubic", *[label for label, _ in columns], "HR"]).save(path, quality=88)


def super_resolution_panels() -> None:
    """One panel per scale whose pixel and perceptual entries are both in the zoo."""
    for scale in SR_SCALES:
        missing = {f"sr_x{scale}_pixel", f"sr_x{scale}_perceptual"} - set(entry_names())
        if missing:
            print(f"x{scale} super-resolution panel not made: the zoo lacks {', '.join(sorted(missing))}")
        else:
            columns = [(f"zoo:sr_x{scale}_{loss}", f"zoo:sr_x{scale}_{loss}") for loss in ("pixel", "perceptual")]
            super_resolution(scale, columns, HERE / f"super_resolution{'' if scale == 4 else f'_x{scale}'}.jpg")


def stylebank() -> None:
    if STYLEBANK_NET not in entry_names():
        print(f"stylebank.jpg not made: the zoo lacks {STYLEBANK_NET}")
        return
    net, metadata = load_net(f"zoo:{STYLEBANK_NET}")
    runner = Runner(net, device="cpu")
    banks = [with_fusion(runner, net, {"bank": index}) for index in range(net.num_styles)]
    fusions = [with_fusion(runner, net, options) for _, options in STYLEBANK_FUSIONS]
    rows = []
    for name in PHOTOS:
        image = photo(name, STYLEBANK_PHOTO_SIZE)[None]
        rows.append([to_pil(image[0])] + [to_pil(apply(image)[0]) for apply in (*banks, *fusions)])
    styles = [to_pil(TF.resize(load_image(style), 96, antialias=True)) for style in metadata.styles]
    blank = Image.new("RGB", (8, 96), "white")
    labels = ["photo", *[f"bank {i}: {Path(s).stem}" for i, s in enumerate(metadata.styles)]]
    labels += [label for label, _ in STYLEBANK_FUSIONS]
    grid([[blank, *styles, blank, blank]] + rows, labels).save(HERE / "stylebank.jpg", quality=85)


FIGURES = ("style", "sr", "stylebank", "optimisation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimisation-steps", type=int, default=100)
    parser.add_argument(
        "--only", nargs="+", choices=FIGURES, default=FIGURES, help="remake only these figures (after a zoo change)"
    )
    parser.add_argument(
        "--sr-compare",
        nargs="+",
        metavar="OUT [LABEL=CKPT ...]",
        help="write the SR crops of these checkpoints (at --scale) to OUT instead of the gallery: before/after",
    )
    parser.add_argument("--scale", type=int, default=4, help="the scale of --sr-compare's checkpoints")
    args = parser.parse_args()
    flush_denormals()
    torch.set_grad_enabled(False)
    if args.sr_compare:
        out, *specs = args.sr_compare
        if not specs or any("=" not in spec for spec in specs):
            parser.error(f"--sr-compare {' '.join(args.sr_compare)}: give OUT then one label=checkpoint per column")
        super_resolution(args.scale, [tuple(spec.split("=", 1)) for spec in specs], Path(out))
        return
    makers = {
        "style": style_transfer,
        "sr": super_resolution_panels,
        "stylebank": stylebank,
        "optimisation": lambda: feedforward_vs_optimisation(args.optimisation_steps),
    }
    for figure in FIGURES:
        if figure in args.only:
            makers[figure]()
    for path in sorted(HERE.glob("*.jpg")):
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
