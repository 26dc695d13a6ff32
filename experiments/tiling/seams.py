"""Why tiles need the whole image's instance-norm statistics: a crop around a tile corner, untiled | tiles normalised
on their own | exact tiles (``tile=``), with each panel's PSNR against the untiled output.

    python experiments/tiling/seams.py --size 1024 --tile 512 --output experiments/tiling/seams.jpg

The middle panel is the same tiling with the statistics swap left out (each tile's instance norms see only that
tile), which is what tiling a style net without it gives.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from PIL import Image, ImageDraw
from torchvision.transforms.v2 import functional as TF

from perceptual.evaluation.metrics import psnr
from perceptual.imaging.io import load_image, to_uint8
from perceptual.inference.runner import Runner, load_net
from perceptual.inference.tiling import TiledApply, spans

PHOTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "content" / "chicago.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="zoo:starry_night")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--crop", type=int, default=320, help="side of the crop around the first tile corner")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("seams.jpg"))
    args = parser.parse_args()

    net, _ = load_net(args.ckpt)
    runner = Runner(net, "cpu")
    image = TF.resize(load_image(args.photo), [args.size, args.size], antialias=True)[None]
    exact = TiledApply(runner, net, args.tile)
    own_statistics = TiledApply(runner, net, args.tile)
    own_statistics.geometry = dataclasses.replace(exact.geometry, norms={})  # no swap: per-tile statistics
    untiled = runner(image)
    panels = {"untiled": untiled, "tiles, own statistics": own_statistics(image), "tiles (tile=)": exact(image)}

    corner = spans(args.size, args.tile, exact.halo, exact.geometry.stride)[0].core_stop  # four tiles meet here
    top = max(0, corner - args.crop // 2)
    canvas = Image.new("RGB", (3 * args.crop + 20, args.crop + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (title, output) in enumerate(panels.items()):
        quality = psnr((output * 255).round(), (untiled * 255).round()).item()
        crop = output[0, :, top : top + args.crop, top : top + args.crop]
        x = index * (args.crop + 10)
        canvas.paste(Image.fromarray(to_uint8(crop)), (x, 24))
        draw.text((x + 4, 6), f"{title}: {quality:.1f} dB" if index else title, fill="black")
        print(f"{title}: {quality:.1f} dB against untiled")
    canvas.save(args.output, quality=92)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
