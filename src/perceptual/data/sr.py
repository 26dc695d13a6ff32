"""Super-resolution data: the paper's training degradation and the benchmark-set protocol.

Training (Johnson et al. 2016): HR crops, LR = Gaussian blur (sigma 1.0) then bicubic downsampling.
Benchmarks (Set5, Set14, ...): LR made by MATLAB ``imresize`` bicubic alone, shipped as
``img_001_SRF_4_LR.png`` beside ``img_001_SRF_4_HR.png``; HR-only folders get their LR made the
same way. The two are kept apart on purpose: numbers in published tables use the second.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from perceptual.data.batch import HR_KEY, LR_KEY, NAME_KEY
from perceptual.errors import ConfigError, DataError
from perceptual.imaging.blur import gaussian_blur
from perceptual.imaging.color import quantize
from perceptual.imaging.io import list_images, load_image
from perceptual.imaging.resize import imresize
from perceptual.nets.johnson import check_scale

log = logging.getLogger(__name__)

PAIR_NAME = re.compile(r"^(?P<stem>.+)_SRF_(?P<scale>\d+)_(?P<kind>HR|LR)$", re.IGNORECASE)


def modcrop(image: Tensor, scale: int) -> Tensor:
    """Crop H and W down to multiples of ``scale`` (bottom/right), as the benchmark protocol does."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


class SRDegradation:
    """HR crop -> ``{"lr", "hr"}`` with LR = MATLAB-bicubic(blur(HR, sigma), 1/scale), quantised to 8 bit.

    Quantising matches what a saved LR image holds, so training sees the same inputs as evaluation.

    ``max_shift > 0`` makes non-aligned pairs, the setting the contextual loss is meant for (Mechrez et al.
    2018): of an ``H x W`` crop, the LR comes from the window starting ``max_shift`` pixels in from the top-left
    corner, and the target from a window of the same size displaced from it by a random offset in
    ``[-max_shift, max_shift]`` HR pixels along each axis (torch's RNG, which Lightning seeds per worker). The
    window is ``(H - 2 max_shift, W - 2 max_shift)`` cropped down to multiples of ``scale``, so the target is
    that size and the LR that size / ``scale``; e.g. a 112 crop at x4 with ``max_shift=8`` gives a 96 target
    and a 24 LR. ``max_shift=0`` is the aligned pair of the whole (modcropped) crop and draws no random number.
    """

    def __init__(self, scale: int, blur_sigma: float = 1.0, quantize_lr: bool = True, max_shift: int = 0) -> None:
        if max_shift < 0:
            raise ConfigError(f"max_shift={max_shift} must be >= 0 (HR pixels the target may be displaced by)")
        self.scale = check_scale(scale)
        self.blur_sigma = blur_sigma
        self.quantize_lr = quantize_lr
        self.max_shift = max_shift

    def degrade(self, hr: Tensor) -> Tensor:
        lr = imresize(gaussian_blur(hr, self.blur_sigma), scale=1 / self.scale)
        return quantize(lr) if self.quantize_lr else lr.clamp(0, 1)

    def __call__(self, crop: Tensor) -> dict[str, Tensor]:
        m = self.max_shift
        height, width = crop.shape[-2:]
        if min(height, width) < 2 * m + self.scale:
            raise ConfigError(
                f"a {height}x{width} crop is too small for max_shift={m} at x{self.scale}; "
                f"set data.image_size to at least {2 * m + self.scale} or lower max_shift"
            )
        source = modcrop(crop[..., m : height - m, m : width - m], self.scale)
        size_y, size_x = source.shape[-2:]
        dy, dx = torch.randint(-m, m + 1, (2,)).tolist() if m else (0, 0)
        target = crop[..., m + dy : m + dy + size_y, m + dx : m + dx + size_x]
        return {LR_KEY: self.degrade(source), HR_KEY: target}


def benchmark_files(root: Path, scale: int) -> list[tuple[str, Path, Path | None]]:
    """(name, HR path, LR path or None) for a benchmark folder: named HR/LR pairs or HR-only images."""
    files = list_images(root)
    named = {}
    for path in files:
        match = PAIR_NAME.match(path.stem)
        if match and int(match["scale"]) == scale:
            named.setdefault(match["stem"], {})[match["kind"].upper()] = path
    if named:
        return [(stem, pair["HR"], pair.get("LR")) for stem, pair in sorted(named.items()) if "HR" in pair]
    # No pairs at this scale: HR images of another scale's pairs (e.g. x8 from the x4 folder), else every image.
    matches = ((m, p) for p in files if (m := PAIR_NAME.match(p.stem)))
    other_hr = {m["stem"]: p for m, p in matches if m["kind"].upper() == "HR"}
    if other_hr:
        return [(stem, path, None) for stem, path in sorted(other_hr.items())]
    return [(p.stem, p, None) for p in files if not PAIR_NAME.match(p.stem)]


class SRBenchmark(Dataset):
    """A benchmark folder as ``{"lr", "hr", "name"}`` samples (full images: use batch size 1).

    Args:
        root: folder of ``*_SRF_<scale>_HR/LR`` pairs (LR used as given) or of HR images.
        scale: upscaling factor.
        blur_sigma: for HR-only folders, blur before bicubic (0 = the benchmark protocol, bicubic only).
    """

    def __init__(self, root: str | Path, scale: int, blur_sigma: float = 0.0) -> None:
        self.root = Path(root).expanduser()
        self.scale = check_scale(scale)
        if not self.root.is_dir():
            raise DataError(f"benchmark folder {self.root} does not exist; pass a folder of HR (and LR) images")
        self.files = benchmark_files(self.root, self.scale)  # (name, HR path, LR path or None)
        if not self.files:
            raise DataError(f"{self.root} holds no HR images for scale {scale}; pass a folder of images")
        self.blur_sigma = blur_sigma

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> dict[str, Tensor | str]:
        """Sample ``index``; :class:`DataError` naming the file when it is unreadable or its LR does not fit its HR."""
        name, hr_path, lr_path = self.files[index]
        hr = modcrop(load_image(hr_path), self.scale)
        if lr_path is None:
            lr = imresize(gaussian_blur(hr, self.blur_sigma), scale=1 / self.scale, uint8=self.blur_sigma == 0)
            return {LR_KEY: quantize(lr), HR_KEY: hr, NAME_KEY: name}
        lr = load_image(lr_path)
        if tuple(lr.shape[-2:]) != (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale):
            raise DataError(
                f"LR {lr_path} ({lr.shape[-2]}x{lr.shape[-1]}) does not match HR {hr_path} "
                f"({hr.shape[-2]}x{hr.shape[-1]} after modcrop) at x{self.scale}; fix or remove the pair"
            )
        return {LR_KEY: lr, HR_KEY: hr, NAME_KEY: name}

    def __getitem__(self, index: int) -> dict[str, Tensor | str] | None:
        """The sample, or None (logged) so that validation skips a bad pair instead of stopping."""
        try:
            return self.load(index)
        except DataError as error:
            log.warning("skipping benchmark image: %s", error)
            return None
