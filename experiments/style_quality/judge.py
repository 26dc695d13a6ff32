"""Judge style nets (or finished images) on held-out photos: Gram-distance ratio, colour spread, edge correlation,
edge halo, periodicity and stride lattice (see perceptual.evaluation.quality). Prints a table, writes results.json
and the images.

    python experiments/style_quality/judge.py --ckpt zoo:starry_night --style starry_night --out /tmp/judged
    python experiments/style_quality/judge.py --ckpt zoo:stylebank --bank 2        # style from the checkpoint
    python experiments/style_quality/judge.py --image result.png --photo chicago.jpg --style starry_night.jpg

Photos are judged at 256 px on the shorter side; the style image at 256 px too (as trained).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF

from perceptual.data.sample import BUILTIN_IMAGES, resolve_image
from perceptual.errors import DataError
from perceptual.evaluation.quality import STYLE_NET_STRIDE, StyleJudge
from perceptual.imaging.io import list_images, load_image, save_image
from perceptual.inference.fusion import with_fusion
from perceptual.inference.runner import Runner, load_net

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def style_path(spec: str) -> str:
    """A built-in name (``mosaic``: the embedded default's generated style) stays as it is; another bare name
    (``starry_night``) resolves to the shared style images."""
    candidate = SHARED / "styles" / f"{spec}.jpg"
    return str(candidate) if spec not in BUILTIN_IMAGES and candidate.is_file() else spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="style-net checkpoint (or zoo:<name>)")
    parser.add_argument("--image", type=Path, help="an already stylised image (with --photo)")
    parser.add_argument("--photo", type=Path, help="the photo --image was made from")
    parser.add_argument("--style", help="style image path or shared style name (default: the checkpoint's)")
    parser.add_argument("--bank", type=int, help="StyleBank checkpoints: the bank to judge")
    parser.add_argument("--photos", type=Path, default=SHARED / "content", help="held-out photos")
    parser.add_argument("--size", type=int, default=256, help="shorter side of photos and style")
    parser.add_argument("--out", type=Path, help="write stylised images and results.json here")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    if (args.ckpt is None) == (args.image is None):
        parser.error("pass --ckpt <checkpoint>, or --image <file> with --photo <file>")
    net, metadata = load_net(args.ckpt) if args.ckpt else (None, None)
    style = args.style or (metadata.styles[args.bank or 0] if metadata and metadata.styles else None)
    if style is None:
        parser.error("pass --style <image or shared style name>: the checkpoint records no style")
    stride = net.capabilities.stride if net is not None else STYLE_NET_STRIDE
    judge = StyleJudge(resolve_image(style_path(style), "style", args.size), stride=stride)
    failed: list[DataError] = []
    if net is None:
        photo = TF.resize(load_image(args.photo), args.size, antialias=True)
        output = TF.resize(load_image(args.image), list(photo.shape[-2:]), antialias=True)
        results = {args.photo.stem: judge.score(output, photo).as_dict()}
    else:
        runner = with_fusion(Runner(net, device="cpu"), net, {"bank": args.bank})
        results = {}
        for path in list_images(args.photos):
            try:
                photo = TF.resize(load_image(path), args.size, antialias=True)
            except DataError as error:  # judged on the others; the exit code says the mean is not over all
                failed.append(error)
                continue
            output = runner(photo[None])[0]
            results[path.stem] = judge.score(output, photo).as_dict()
            if args.out:
                save_image(output, args.out / f"{path.stem}.png")
    rows = list(results.values())
    results["mean"] = {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}
    print(f"{'photo':<20} {'gram ratio':>10} {'colour':>8} {'edges':>8} {'halo':>8} {'periodic':>8} {'lattice':>8}")
    for name, row in results.items():
        print(
            f"{name:<20} {row['gram_ratio']:>10.3f} {row['colour_spread']:>8.3f} {row['edge_correlation']:>8.3f}"
            f" {row['halo']:>+8.3f} {row['periodicity']:>8.2f} {row['lattice']:>8.2f}"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    for error in failed:
        print(f"failed: {error}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
