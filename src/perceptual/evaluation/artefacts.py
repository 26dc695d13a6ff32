"""The artefacts that undertrained nets show and the Gram, PSNR and sharpness figures cannot see.

* **Edge halo**: bands of style colour drawn beside the photo's edges. The output's colour gradient rises in a band
  2-6 px beside the photo's strongest edges more than far from them. The figure is that rise, relative to the
  gradient on the edges themselves, minus the same figure for the photo (whose own edges are blurred, so it is
  slightly above 0 too): about 0 for a faithful or evenly textured output, 0.1-0.5 for visible halos.
* **Periodicity**: a regular cross-hatch, the cheapest stationary texture a net can paint. The power spectrum of the
  output's high-passed luma then has isolated peaks. The figure is the spectrum's peak-to-mean ratio, relative to
  the photo's: below 1 for irregular texture (optimisation from noise scores 0.3-0.8), several times 1 for hatching.

* **Upsampling grid**: a super-resolution net that upsamples by repeated x2 steps can leave a pattern repeating every
  ``scale`` pixels, which sharpness counts as detail. The figure is the power of the output's luma at the
  frequencies ``k / scale`` (k = 1 .. scale - 1) along x and y, relative to their neighbouring frequencies: about 1
  for a photo or a bicubic upscale, 1.3-2 for a visible grid. The same figure at a style net's stride, relative to
  the photo's, is its **lattice**.

The first two run on a [3,H,W] output and its photo at the judging resolution (256 px on the shorter side: the
distances are in pixels). Written with SciPy's n-dimensional image filters, which scikit-image builds on; no library
has these figures.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from torch import Tensor

from perceptual.imaging.color import luma

EDGE_QUANTILE = 90  # the photo's strongest 10 % of gradients are its edges
HALO_BAND = (2.0, 6.0)  # px beside an edge where halos sit
FAR = 10.0  # px: farther than this from any edge is "far"
HIGH_PASS_SIGMA = 3.0  # px: texture finer than this is what a hatch is made of
LOWEST_FREQUENCY = 0.02  # cycles/px: below this the spectrum is the image's layout, not its texture


def _gradient(channels: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude summed over the channels of a [C,H,W] array."""
    return sum(np.hypot(ndimage.sobel(c, 0), ndimage.sobel(c, 1)) for c in channels)


def luma_array(image: Tensor) -> np.ndarray:
    """The luma of a [3,H,W] image as a float64 [H,W] array."""
    return luma(image.float().cpu())[0].numpy().astype(np.float64)


def radial_frequency(shape: tuple[int, ...]) -> np.ndarray:
    """|k| in cycles/px of each bin of a 2-D FFT of that [H,W] shape."""
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij")
    return np.hypot(fy, fx)


def _halo_index(image: np.ndarray, edges: np.ndarray, band: np.ndarray, far: np.ndarray) -> float:
    gradient = _gradient(image)
    return float((gradient[band].mean() - gradient[far].mean()) / max(gradient[edges].mean(), 1e-12))


def edge_halo(output: Tensor, photo: Tensor) -> float:
    """Halo figure of ``output`` (module docstring); ``output`` and ``photo`` are [3,H,W] in [0, 1]."""
    luma_photo = luma_array(photo)
    gradient = np.hypot(ndimage.sobel(luma_photo, 0), ndimage.sobel(luma_photo, 1))
    edges = gradient > np.percentile(gradient, EDGE_QUANTILE)
    distance = ndimage.distance_transform_edt(~edges)
    band = (distance >= HALO_BAND[0]) & (distance <= HALO_BAND[1])
    far = distance > FAR
    if not edges.any() or not band.any() or not far.any():
        return 0.0  # a flat photo, or one that is all edges: nothing to measure against
    images = [x.float().cpu().numpy().astype(np.float64) for x in (output, photo)]
    return _halo_index(images[0], edges, band, far) - _halo_index(images[1], edges, band, far)


def texture_spectrum(image: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The power spectrum of the high-passed luma of ``image`` [3,H,W] (its texture), and the mask of the bins above
    the lowest frequencies (the texture band)."""
    y = luma_array(image)
    texture = y - ndimage.gaussian_filter(y, HIGH_PASS_SIGMA)
    power = np.abs(np.fft.fft2(texture - texture.mean())) ** 2
    return power, radial_frequency(y.shape) > LOWEST_FREQUENCY


def spectral_peak_ratio(image: Tensor) -> float:
    """Peak-to-mean ratio of the texture spectrum of ``image`` [3,H,W] within its texture band."""
    power, texture_band = texture_spectrum(image)
    return float(power[texture_band].max() / max(power[texture_band].mean(), 1e-30))


def periodicity(output: Tensor, photo: Tensor) -> float:
    """Periodicity figure of ``output`` relative to ``photo`` (module docstring)."""
    return spectral_peak_ratio(output) / max(spectral_peak_ratio(photo), 1e-12)


GRID_NEIGHBOURS = (-3, -2, 2, 3)  # frequency bins beside a grid frequency that stand for the image without the grid


def grid_strength(image: Tensor, period: int) -> float:
    """Upsampling-grid figure (module docstring) of ``image`` [3,H,W] for a pattern repeating every ``period`` px."""
    y = luma_array(image)
    height, width = (side // period * period for side in y.shape)  # grid frequencies fall on exact bins
    y = y[:height, :width]
    power = np.abs(np.fft.fft2(y - y.mean())) ** 2
    ratios = []
    for profile in (power.mean(axis=0), power.mean(axis=1)):  # power per horizontal, then vertical, frequency
        n = len(profile)
        for k in range(1, period):
            peak = k * n // period
            around = np.mean([profile[(peak + offset) % n] for offset in GRID_NEIGHBOURS])
            ratios.append(profile[peak] / max(around, 1e-30))
    return float(np.mean(ratios)) if ratios else 1.0


def lattice(output: Tensor, photo: Tensor, period: int) -> float:
    """The upsampling-grid figure of ``output`` at ``period`` (a style net's stride) relative to that of its
    ``photo``: about 1 when the net paints no lattice locked to its stride."""
    return grid_strength(output, period) / max(grid_strength(photo, period), 1e-12)
