"""Side-by-side crops of judged outputs, one column per variant, for before/after comparisons of recipes.

    python experiments/style_quality/crops.py --out halo_tv.jpg --photo chicago --box 0,96,256,160 \
        "TV 1e-6=/tmp/judged/tv1e-6" "TV 1e-4=/tmp/judged/tv1e-4"

Each ``label=folder`` names a ``judge.py --out`` folder; ``--box left,top,width,height`` is in the judged images'
pixels (256 px shorter side); crops are enlarged ``--zoom`` times with nearest neighbours so halos stay visible, and
the label is written above each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

LABEL_HEIGHT = 18


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="label=folder written by judge.py --out")
    parser.add_argument("--photo", default="chicago", help="which judged photo (file stem)")
    parser.add_argument("--box", default="0,0,256,256", help="left,top,width,height")
    parser.add_argument("--zoom", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    left, top, width, height = (int(v) for v in args.box.split(","))
    tile = (width * args.zoom, height * args.zoom)
    panel = Image.new("RGB", (len(args.variants) * (tile[0] + 4) - 4, tile[1] + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(panel)
    for column, variant in enumerate(args.variants):
        label, folder = variant.split("=", 1)
        image = Image.open(Path(folder) / f"{args.photo}.png").convert("RGB")
        crop = image.crop((left, top, left + width, top + height)).resize(tile, Image.Resampling.NEAREST)
        x = column * (tile[0] + 4)
        panel.paste(crop, (x, LABEL_HEIGHT))
        draw.text((x + 2, 3), label, fill="black")
    panel.save(args.out, quality=90)


if __name__ == "__main__":
    main()
