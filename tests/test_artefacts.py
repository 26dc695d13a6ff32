"""Edge-halo and periodicity figures on constructed images: what they must see and what they must not."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from perceptual.evaluation.artefacts import edge_halo, grid_strength, periodicity, spectral_peak_ratio
from perceptual.imaging.resize import imresize

SIZE = 96


def smooth_noise(seed: int, size: int = SIZE, blur: int = 9) -> torch.Tensor:
    """An irregular, photo-like [3,H,W] image: box-blurred noise, stretched to [0.2, 0.8]."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, size + blur - 1, size + blur - 1, generator=generator)
    image = F.avg_pool2d(noise, blur, stride=1)[0]
    image = (image - image.amin()) / (image.amax() - image.amin())
    return 0.2 + 0.6 * image


def step_edge_photo() -> torch.Tensor:
    """Dark left half, bright right half, with a little texture so that 'far' regions have some gradient."""
    photo = torch.full((3, SIZE, SIZE), 0.2)
    photo[:, :, SIZE // 2 :] = 0.8
    return (photo + 0.05 * (smooth_noise(3) - 0.5)).clamp(0, 1)


def test_halo_is_zero_for_the_photo_and_positive_for_a_band_beside_its_edge() -> None:
    photo = step_edge_photo()
    assert edge_halo(photo, photo) == pytest.approx(0.0, abs=1e-9)
    haloed = photo.clone()
    haloed[0, :, SIZE // 2 + 3 : SIZE // 2 + 6] = 1.0  # a red stripe 3-5 px to the right of the edge
    haloed[1:, :, SIZE // 2 + 3 : SIZE // 2 + 6] = 0.0
    assert edge_halo(haloed, photo) > 0.1


def test_texture_everywhere_is_not_a_halo() -> None:
    photo = step_edge_photo()
    textured = (photo + 0.3 * (smooth_noise(7, blur=3) - 0.5)).clamp(0, 1)
    assert abs(edge_halo(textured, photo)) < 0.05


def test_halo_of_a_flat_photo_is_zero() -> None:
    flat = torch.full((3, SIZE, SIZE), 0.5)
    assert edge_halo(smooth_noise(1), flat) == 0.0


def test_periodicity_sees_a_regular_hatch_and_not_irregular_texture() -> None:
    photo = smooth_noise(0)
    assert periodicity(photo, photo) == pytest.approx(1.0)
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    hatch = 0.15 * torch.sin(2 * math.pi * (xs + ys) / 6.0)  # diagonal lines, 6 px apart along each axis
    assert periodicity((photo + hatch).clamp(0, 1), photo) > 3.0
    irregular = (photo + 0.15 * (smooth_noise(5, blur=2) - 0.5) * 2).clamp(0, 1)
    assert periodicity(irregular, photo) < 2.0


def test_spectral_peak_ratio_of_a_pure_grating_is_large() -> None:
    xs = torch.arange(SIZE).float().expand(SIZE, SIZE)
    grating = (0.5 + 0.4 * torch.sin(2 * math.pi * xs / 8.0)).expand(3, SIZE, SIZE)
    assert spectral_peak_ratio(grating) > 20 * spectral_peak_ratio(smooth_noise(2))


def test_grid_strength_sees_a_pattern_repeating_every_scale_pixels() -> None:
    hr = smooth_noise(4, size=SIZE, blur=5)
    upscaled = imresize(imresize(hr, scale=1 / 4), size=(SIZE, SIZE)).clamp(0, 1)
    assert grid_strength(hr, 4) == pytest.approx(1.0, abs=0.3)
    assert grid_strength(upscaled, 4) == pytest.approx(1.0, abs=0.3)
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    cell = ((xs % 4 == 0) | (ys % 4 == 0)).float()  # a faint line every 4 px, as nearest x2 x2 upsampling leaves
    gridded = (upscaled + 0.03 * cell).clamp(0, 1)
    assert grid_strength(gridded, 4) > 3.0
    assert grid_strength(gridded, 3) < grid_strength(gridded, 4)  # it is the 4 px period that is seen
