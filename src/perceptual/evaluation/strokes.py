"""Stroke size of a stylisation, read from the spectrum of what it adds to the photo.

The stylised-minus-photo luma mixes two things: colour changes locked to the photo's content (a sky turned yellow,
a building darkened), which sit where the photo's regions are and keep their size whatever the strokes do, and the
strokes. The power spectrum of the whole residual is dominated by the first and peaks at the size of the photo's
regions, so the part that the photo explains is taken out first: within windows of 2 * radius + 1 px, the residual's
best linear fit on the photo's luma (the guided filter of He et al. 2013, with the residual as its input). The fit
follows content-locked shifts of any size down to the photo's edges but cannot follow texture the photo does not
have. The stroke wavelength is the peak of the radially averaged power spectrum of what is left, as power per octave
(Hann-windowed, 1/8-octave bins smoothed over an octave, the peak refined by a parabola in log frequency).

Both images must show what the net saw and painted. For a net that paints at a working resolution (``stroke=``),
pass the output and the photo each brought to that resolution and back: the strokes all lie below it, and what the
stroke stage adds above it (the photo's detail, amplified, and the edges snapped to the photo's) is locked to the
photo at a size set by the working resolution, which the fit on the smoothed photo cannot explain and which would
pass for strokes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from torch import Tensor

from perceptual.evaluation.artefacts import luma_array, radial_frequency

TEXTURE_RADIUS = 64  # px: shifts that the photo explains over ~128 px windows are content; strokes must be smaller
TEXTURE_EPS = 1e-4  # guided-filter regulariser (luma^2): a tight fit wherever the photo has any contrast
BINS_PER_OCTAVE = 8
SMOOTHING_OCTAVES = 1.0  # full width at half maximum of the smoothing of the per-octave spectrum
LOWEST_CYCLES = 4  # per image: below this the spectrum is the window's, not the image's
_FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))


def guided_coefficients(
    guide: np.ndarray, source: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The box-averaged coefficients (a, b) of the guided filter (He et al. 2013): ``a * guide + b`` is ``source``'s
    local linear fit on ``guide`` [H,W] in (2 radius + 1)^2 windows. ``source`` is [..., H, W]. Written with SciPy's
    box filter: no installed library has a guided filter."""

    def box(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=(1,) * (x.ndim - 2) + (2 * radius + 1,) * 2, mode="reflect")

    mean_g, mean_s = box(guide), box(source)
    a = (box(guide * source) - mean_g * mean_s) / (box(guide * guide) - mean_g**2 + eps)
    return box(a), box(mean_s - a * mean_g)


def stroke_texture(output: Tensor, photo: Tensor, radius: int = TEXTURE_RADIUS) -> np.ndarray:
    """The luma that ``output`` adds to ``photo`` less the part that the photo explains locally (module docstring).
    [3,H,W] each -> [H,W]."""
    guide = luma_array(photo)
    residual = luma_array(output) - guide
    a, b = guided_coefficients(guide, residual, radius, TEXTURE_EPS)
    return residual - (a * guide + b)


def power_per_octave(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The radially averaged power spectrum of ``image`` [H,W] (Hann-windowed) as power per octave, k^2 P(k), in
    1/8-octave bins from :data:`LOWEST_CYCLES` per image to Nyquist: (bin centres in cycles/px, levels)."""
    height, width = image.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    power = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
    k = radial_frequency(image.shape).ravel()
    low = LOWEST_CYCLES / min(height, width)
    n = int(BINS_PER_OCTAVE * np.log2(0.5 / low))
    edges = low * 2.0 ** (np.arange(n + 1) / BINS_PER_OCTAVE)
    index = np.digitize(k, edges) - 1
    inside = (index >= 0) & (index < n)
    total = np.bincount(index[inside], weights=(k**2 * power.ravel())[inside], minlength=n)
    count = np.bincount(index[inside], minlength=n)
    return np.sqrt(edges[1:] * edges[:-1]), total / np.maximum(count, 1)


def peak_wavelength(centres: np.ndarray, levels: np.ndarray) -> float:
    """Wavelength (px) at the peak of a per-octave spectrum (:func:`power_per_octave`), smoothed over
    :data:`SMOOTHING_OCTAVES` and refined by the parabola through the log levels of the peak bin and its neighbours
    (a broad spectrum's raw peak jumps between bins)."""
    sigma = SMOOTHING_OCTAVES * BINS_PER_OCTAVE / _FWHM_PER_SIGMA
    smooth = np.log(np.maximum(ndimage.gaussian_filter1d(levels, sigma, mode="nearest"), 1e-300))
    i = int(np.clip(np.argmax(smooth), 1, len(smooth) - 2))
    below, top, above = smooth[i - 1 : i + 2]
    curvature = below - 2 * top + above
    shift = float(np.clip(0.5 * (below - above) / curvature, -1, 1)) if curvature < 0 else 0.0
    return float(1 / (centres[i] * 2 ** (shift / BINS_PER_OCTAVE)))


def stroke_wavelength(output: Tensor, photo: Tensor, radius: int = TEXTURE_RADIUS) -> float:
    """Dominant stroke wavelength (px) of ``output`` against ``photo``: the peak of the per-octave spectrum of
    :func:`stroke_texture` (module docstring). [3,H,W] each."""
    return peak_wavelength(*power_per_octave(stroke_texture(output, photo, radius)))
