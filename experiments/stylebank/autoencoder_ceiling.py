"""How well can StyleBank's shared encoder/decoder reconstruct a photo, and what holds it back?

    python experiments/stylebank/autoencoder_ceiling.py --photos ../shared/data/photos/bsds500/train \
        --held-out ../shared/data/photos/bsds500/test ../shared/data/content

Trains only the auto-encoder branch ``D(E(I))`` with the identity loss (pixel MSE, no loss network, so it is cheap)
and prints the median PSNR on held-out photos (short side 256 px) as it goes, for:
1. ``zoo:stylebank``'s encoder and decoder as shipped, then fine-tuned on the identity loss alone;
2. the paper's net (instance norm after every layer but the last) from scratch;
3. the same net without normalisation, from scratch.
If (1) and (2) stall where (3) keeps climbing, the ceiling is the architecture's, not the training's.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from perceptual.data.batch import IMAGE_KEY
from perceptual.data.modules import FolderDataModule
from perceptual.evaluation.metrics import psnr
from perceptual.imaging.io import list_images, load_image
from perceptual.inference.runner import load_net
from perceptual.nets.stylebank import StyleBankNet


def held_out_photos(folders: list[Path], short_side: int) -> list[Tensor]:
    photos = [load_image(path)[None] for folder in folders for path in list_images(folder)]
    return [
        F.interpolate(p, scale_factor=short_side / min(p.shape[-2:]), mode="bicubic", antialias=True).clamp(0, 1)
        for p in photos
    ]


@torch.no_grad()
def median_psnr(net: StyleBankNet, photos: list[Tensor]) -> float:
    net.eval()
    scores = [float(psnr(net(photo).clamp(0, 1), photo, data_range=1.0)) for photo in photos]
    net.train()
    return statistics.median(scores)


def crops(photos: Path, size: int, batch: int, seed: int) -> Iterator[Tensor]:
    """Random crops at the photos' own scale, as the library's loader draws them for training."""
    data = FolderDataModule(root=str(photos), batch_size=batch, image_size=size, resize=False, num_workers=0, seed=seed)
    data.setup()
    for samples in itertools.chain.from_iterable(itertools.repeat(data.train_dataloader())):
        yield samples[IMAGE_KEY]


def train_identity(net: StyleBankNet, label: str, args: argparse.Namespace, lr: float, photos: list[Tensor]) -> None:
    """Adam on E and D with the identity loss, the rate annealed to 0; prints the held-out median every so often."""
    torch.manual_seed(args.seed)
    optimiser = torch.optim.Adam(net.autoencoder_parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps)
    print(f"{label}, lr {lr:g}: step 0, median PSNR {median_psnr(net, photos):.2f} dB", flush=True)
    start = time.perf_counter()
    for step, batch in enumerate(crops(args.photos, args.crop, args.batch, args.seed), start=1):
        loss = F.mse_loss(net(batch), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % args.report_every == 0 or step == args.steps:
            seconds = time.perf_counter() - start
            print(f"{label}: step {step}, median PSNR {median_psnr(net, photos):.2f} dB ({seconds:.0f} s)", flush=True)
        if step == args.steps:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--photos", type=Path, required=True, help="training photos (crops at their own scale)")
    parser.add_argument("--held-out", type=Path, nargs="+", required=True, help="folders of held-out photos")
    parser.add_argument("--size", type=int, default=256, help="short side of the held-out photos")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--report-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    photos = held_out_photos(args.held_out, args.size)
    print(f"{len(photos)} held-out photos at {args.size} px (short side); {args.crop} px crops, batch {args.batch}")
    shipped, _ = load_net("zoo:stylebank")
    train_identity(shipped.float(), "zoo:stylebank E/D (instance norm)", args, 1e-4, photos)
    for norm in ("instance", "none"):
        torch.manual_seed(args.seed)
        scratch = StyleBankNet(num_styles=0, norm=norm, upsample="nearest")
        train_identity(scratch, f"from scratch, norm={norm}", args, 1e-3, photos)


if __name__ == "__main__":
    main()
