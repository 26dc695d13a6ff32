"""Bicubic baseline on Set5 / Set14: checks our imresize + metrics against the numbers SR papers publish.

Each shared LR image is upsampled to the (modcropped) HR size with MATLAB-compatible bicubic on 8-bit levels and
scored on Y with ``scale`` border pixels cropped; the table lists the mean PSNR / SSIM beside the published bicubic
values (SRCNN / VDSR / SelfExSR tables). Two extra columns show the MATLAB evaluation details that move the numbers:
Y rounded to uint8 (MATLAB's ``rgb2ycbcr`` on uint8 images) and grayscale images scored on their raw intensities
instead of Y (what the published Set14 numbers evidently do with its one grayscale image).

Usage: python experiments/sr_bicubic_baseline/bicubic_baseline.py [DATA_ROOT]
DATA_ROOT holds <Set>/x<scale>/img_NNN_SRF_<scale>_{HR,LR}.png; default <repo>/../shared/data/sr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from perceptual.evaluation.metrics import crop_border, psnr, psnr_y, ssim, ssim_y
from perceptual.imaging.color import rgb_to_y
from perceptual.imaging.resize import imresize

PUBLISHED = {  # (PSNR dB, SSIM) of bicubic upsampling, Y channel, border = scale
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 3): (27.55, 0.7742),
    ("Set14", 4): (26.00, 0.7027),
}


def load(path: Path) -> tuple[Tensor, bool]:
    """An 8-bit PNG as a float64 [1, 3, H, W] tensor in [0, 1] (gray repeated to 3 channels) and whether it was gray."""
    image = Image.open(path)
    array = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous(), image.mode == "L"


def modcrop(image: Tensor, scale: int) -> Tensor:
    """Crop H and W down to multiples of ``scale``, as the MATLAB benchmark code does before downscaling."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]


def matlab_planes(sr: Tensor, hr: Tensor, gray: bool, crop: int, gray_raw: bool) -> tuple[Tensor, Tensor]:
    """Planes as MATLAB evaluation code sees them: uint8 Y, or the raw gray plane when ``gray_raw`` and gray."""
    if gray and gray_raw:
        return crop_border(sr[:, :1] * 255, crop), crop_border(hr[:, :1] * 255, crop)
    y_sr, y_hr = (torch.floor(rgb_to_y(x) + 0.5) for x in (sr, hr))
    return crop_border(y_sr, crop), crop_border(y_hr, crop)


def evaluate(root: Path, dataset: str, scale: int) -> dict[str, float]:
    """Mean per-image scores of bicubic upsampling on one benchmark at one scale."""
    scores: dict[str, list[float]] = {key: [] for key in ("psnr", "ssim", "psnr_u8", "ssim_u8", "psnr_raw", "ssim_raw")}
    hr_paths = sorted((root / dataset / f"x{scale}").glob("*_HR.png"))
    if not hr_paths:
        raise FileNotFoundError(f"no *_HR.png under {root / dataset / f'x{scale}'}")
    for hr_path in hr_paths:
        hr, gray = load(hr_path)
        lr, _ = load(hr_path.with_name(hr_path.name.replace("_HR", "_LR")))
        hr = modcrop(hr, scale)
        if tuple(hr.shape[-2:]) != tuple(scale * n for n in lr.shape[-2:]):
            raise ValueError(f"{hr_path.name}: HR {tuple(hr.shape[-2:])} is not {scale} x LR {tuple(lr.shape[-2:])}")
        sr = imresize(lr, size=tuple(hr.shape[-2:]), uint8=True)  # MATLAB imresize on uint8: already 8-bit levels
        scores["psnr"].append(psnr_y(sr, hr, scale).item())
        scores["ssim"].append(ssim_y(sr, hr, scale).item())
        for suffix, gray_raw in (("u8", False), ("raw", True)):
            planes = matlab_planes(sr, hr, gray, scale, gray_raw)
            scores[f"psnr_{suffix}"].append(psnr(*planes).item())
            scores[f"ssim_{suffix}"].append(ssim(*planes).item())
    return {key: float(np.mean(values)) for key, values in scores.items()}


def main(argv: list[str]) -> None:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sr"
    print(
        "| set | scale | PSNR (ours) | PSNR (published) | diff | SSIM (ours) | SSIM (published) | diff "
        "| PSNR / SSIM, uint8 Y | PSNR / SSIM, uint8 Y + raw gray |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dataset in ("Set5", "Set14"):
        for scale in (2, 3, 4):
            s = evaluate(root, dataset, scale)
            pub_psnr, pub_ssim = PUBLISHED[(dataset, scale)]
            print(
                f"| {dataset} | x{scale} | {s['psnr']:.2f} | {pub_psnr:.2f} | {s['psnr'] - pub_psnr:+.2f} "
                f"| {s['ssim']:.4f} | {pub_ssim:.4f} | {s['ssim'] - pub_ssim:+.4f} "
                f"| {s['psnr_u8']:.2f} / {s['ssim_u8']:.4f} | {s['psnr_raw']:.2f} / {s['ssim_raw']:.4f} |"
            )


if __name__ == "__main__":
    main(sys.argv)
