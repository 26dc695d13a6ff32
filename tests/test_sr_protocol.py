"""The SR evaluation protocol: MATLAB-compatible bicubic, Y conversion, border crop, PSNR/SSIM as papers report them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import structural_similarity

from perceptual.evaluation.metrics import SRPSNR, SRSSIM, crop_border, psnr_y, sharpness_y, ssim, ssim_y
from perceptual.imaging.color import quantize, rgb_to_y
from perceptual.imaging.resize import imresize, resize_matrix

SHARED_SR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sr"


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _smooth(height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth RGB image in [0, 1]: coarse noise upsampled by bicubic."""
    coarse = _random(1, 3, height // 8, width // 8, seed=seed)
    return imresize(coarse, size=(height, width)).clamp(0, 1)


def _load(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


# --- colour ---------------------------------------------------------------------------------------------------------


def test_y_of_white_and_black() -> None:
    white, black = torch.ones(1, 3, 4, 5), torch.zeros(1, 3, 4, 5)
    assert rgb_to_y(white).shape == (1, 1, 4, 5)
    torch.testing.assert_close(rgb_to_y(white), torch.full((1, 1, 4, 5), 235.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(rgb_to_y(black), torch.full((1, 1, 4, 5), 16.0), atol=1e-4, rtol=0)


def test_y_matches_skimage_rgb2ycbcr() -> None:
    image = _random(3, 6, 7)
    expected = rgb2ycbcr(image.permute(1, 2, 0).numpy())[..., 0]
    np.testing.assert_allclose(rgb_to_y(image)[0].numpy(), expected, atol=1e-9)


def test_quantize_rounds_to_8bit_levels_half_up_and_clamps() -> None:
    values = torch.tensor([-0.2, 0.5 / 255, 0.49 / 255, 100.5 / 255, 0.5, 1.3], dtype=torch.float64)
    expected = torch.tensor([0, 1, 0, 101, 128, 255], dtype=torch.float64) / 255
    torch.testing.assert_close(quantize(values), expected)


# --- metrics --------------------------------------------------------------------------------------------------------


def test_psnr_of_one_gray_level_on_y() -> None:
    hr = 0.1 + 0.7 * _random(2, 1, 24, 24).expand(-1, 3, -1, -1)  # gray: Y = 16 + 219 * value
    sr = hr + 1 / 219  # Y differs by exactly 1 everywhere
    torch.testing.assert_close(rgb_to_y(sr) - rgb_to_y(hr), torch.ones(2, 1, 24, 24, dtype=torch.float64))
    expected = 20 * math.log10(255)
    assert psnr_y(sr, hr, crop=4) == pytest.approx([expected, expected], abs=0.01)


def test_ssim_of_identical_images_is_one() -> None:
    image = _random(3, 3, 32, 40)
    torch.testing.assert_close(ssim_y(image, image, crop=2), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["random", "smooth", "smooth+noise", "rgb"])
@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_skimage(kind: str, seed: int) -> None:
    if kind == "random":
        hr, sr = _random(1, 3, 40, 48, seed=seed), _random(1, 3, 40, 48, seed=seed + 100)
    else:
        hr = _smooth(40, 48, seed)
        sr = _smooth(40, 48, seed + 100) if kind == "smooth" else (hr + 0.05 * _random(1, 3, 40, 48, seed=seed) - 0.025)
    crop = 3
    settings = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
    if kind == "rgb":
        ours = ssim(*(crop_border(x, crop).double() * 255 for x in (sr, hr))).item()
        reference = structural_similarity(
            crop_border(sr, crop)[0].numpy() * 255, crop_border(hr, crop)[0].numpy() * 255, channel_axis=0, **settings
        )
    else:
        ours = ssim_y(sr, hr, crop).item()
        y_sr, y_hr = (crop_border(rgb_to_y(x), crop)[0, 0].numpy() for x in (sr, hr))
        reference = structural_similarity(y_sr, y_hr, **settings)
    assert ours == pytest.approx(reference, abs=1e-6)  # acceptance is 1e-3; it agrees to float precision


def test_crop_border_removes_n_pixels_per_side() -> None:
    image = _random(2, 3, 20, 24)
    cropped = crop_border(image, 4)
    assert cropped.shape == (2, 3, 12, 16)
    torch.testing.assert_close(cropped, image[..., 4:16, 4:20])
    assert crop_border(image, 0) is image
    with pytest.raises(ValueError):
        crop_border(image, 10)


def test_metrics_ignore_the_cropped_border() -> None:
    scale = 3
    hr = _smooth(32, 32, seed=0)
    sr = hr + 0.02 * _random(1, 3, 32, 32, seed=1)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[scale:-scale, scale:-scale] = False
    changed = torch.where(border, _random(1, 3, 32, 32, seed=2), sr)
    torch.testing.assert_close(psnr_y(changed, hr, scale), psnr_y(sr, hr, scale))
    torch.testing.assert_close(ssim_y(changed, hr, scale), ssim_y(sr, hr, scale))
    inside = sr.clone()
    inside[..., scale, scale] = 1 - inside[..., scale, scale]  # first pixel inside the crop does count
    assert psnr_y(inside, hr, scale) < psnr_y(sr, hr, scale)


def test_metric_averages_per_image_psnr_not_pooled_mse() -> None:
    hr = _random(2, 3, 16, 16)
    sr = hr.clone()
    sr[0] += 1 / 219  # image 0: Y off by 1; image 1: Y off by 10
    sr[1] += 10 / 219
    metric = SRPSNR(crop_border=2)
    metric.update(sr, hr)
    per_image = psnr_y(sr, hr, 2)
    assert metric.compute().item() == pytest.approx(per_image.mean().item())
    pooled = 10 * math.log10(255**2 / ((1 + 100) / 2))
    assert abs(metric.compute().item() - pooled) > 1


@pytest.mark.parametrize("metric_class", [SRPSNR, SRSSIM])
def test_metric_states_split_like_ddp(metric_class: type[SRPSNR] | type[SRSSIM]) -> None:
    hr = _random(4, 3, 24, 24, seed=0)
    sr = (hr + 0.1 * _random(4, 3, 24, 24, seed=1)).clamp(0, 1)
    whole = metric_class(crop_border=2)
    whole.update(sr, hr)
    halves = metric_class(crop_border=2)
    halves.update(sr[:2], hr[:2])
    halves.update(sr[2:], hr[2:])
    torch.testing.assert_close(halves.compute(), whole.compute())
    # Two "ranks" see different numbers of images; torchmetrics' own sync path gathers and reduces the states.
    rank1 = metric_class(crop_border=2)
    rank1.update(sr[1:], hr[1:])
    remote_states = [rank1.total, rank1.count]  # the order add_state registered them, which is the gather order

    def fake_all_gather(tensor: torch.Tensor, group: object = None) -> list[torch.Tensor]:
        return [tensor, remote_states.pop(0)]

    rank0 = metric_class(crop_border=2, dist_sync_fn=fake_all_gather, distributed_available_fn=lambda: True)
    rank0.update(sr[:1], hr[:1])
    torch.testing.assert_close(rank0.compute(), whole.compute())
    assert not remote_states
    per_image = psnr_y(sr, hr, 2) if metric_class is SRPSNR else ssim_y(sr, hr, 2)
    torch.testing.assert_close(whole.compute(), per_image.mean())


# --- imresize -------------------------------------------------------------------------------------------------------


def test_imresize_output_shapes() -> None:
    image = _random(3, 10, 13)
    assert imresize(image, 1 / 3).shape == (3, 4, 5)  # ceil(3.33), ceil(4.33)
    assert imresize(image, 2.5).shape == (3, 25, 33)  # ceil(32.5)
    assert imresize(image[None], size=(7, 20)).shape == (1, 3, 7, 20)
    assert imresize(_random(3, 510, 12), 1 / 3).shape == (3, 170, 4)
    with pytest.raises(ValueError):
        imresize(image)


def test_imresize_identity_at_scale_one() -> None:
    image = _random(2, 3, 9, 11)
    torch.testing.assert_close(imresize(image, 1.0), image)
    torch.testing.assert_close(imresize(image, size=(9, 11)), image)


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2.0, 3.0])
def test_imresize_keeps_constant_images_constant(scale: float) -> None:
    image = torch.full((3, 12, 15), 0.37, dtype=torch.float64)
    out = imresize(image, scale)
    torch.testing.assert_close(out, torch.full_like(out, 0.37))


def test_imresize_downscale_matches_hand_computed_1d_kernel() -> None:
    # x1/2 with antialiasing: kernel 0.5 * cubic(0.5 * d), taps at distances d = +-0.5, +-1.5, +-2.5, +-3.5 give
    # cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625, cubic(1.25) = -0.0703125, cubic(1.75) = -0.0234375;
    # they sum to 2, so the normalised weights are half of them.
    weights = torch.tensor([-0.0234375, -0.0703125, 0.2265625, 0.8671875], dtype=torch.float64) / 2
    weights = torch.cat([weights, weights.flip(0)])
    signal = _random(12)
    out = imresize(signal.view(1, 1, 12), 0.5)  # H = 1 stays 1 (every tap clamps to the one row)
    assert out.shape == (1, 1, 6)
    # Output 3 (1-based) sits at u = 5.5: taps on pixels 2..9, all inside.
    assert out[0, 0, 2].item() == pytest.approx((weights * signal[1:9]).sum().item(), abs=1e-12)
    # Output 1 sits at u = 1.5: taps on pixels -2..5; MATLAB clamps -2, -1, 0 to pixel 1 (replicated end point).
    first = weights[:4].sum() * signal[0] + (weights[4:] * signal[1:5]).sum()
    assert out[0, 0, 0].item() == pytest.approx(first.item(), abs=1e-12)


def test_imresize_upscale_reproduces_a_linear_ramp_inside() -> None:
    rows, cols = torch.meshgrid(torch.arange(1.0, 11.0), torch.arange(1.0, 13.0), indexing="ij")
    ramp = (0.03 * rows + 0.05 * cols).to(torch.float64)[None]
    out = imresize(ramp, 2.0)
    # Output pixel x samples the input at u = x / 2 + 0.25 (1-based); cubic interpolation is exact on linear data.
    u_rows, u_cols = torch.meshgrid(
        torch.arange(1.0, 21.0) / 2 + 0.25, torch.arange(1.0, 25.0) / 2 + 0.25, indexing="ij"
    )
    expected = (0.03 * u_rows + 0.05 * u_cols).to(torch.float64)
    torch.testing.assert_close(out[0, 4:-4, 4:-4], expected[4:-4, 4:-4])


def test_antialias_matters_only_when_shrinking() -> None:
    image = _random(3, 24, 24)
    assert (imresize(image, 0.5) - imresize(image, 0.5, antialias=False)).abs().max() > 0.05
    torch.testing.assert_close(imresize(image, 2.0), imresize(image, 2.0, antialias=False))


def test_imresize_float32_and_batch() -> None:
    image = _random(2, 3, 16, 20)
    single = torch.stack([imresize(x, 0.5) for x in image])
    torch.testing.assert_close(imresize(image, 0.5), single)
    out32 = imresize(image.float(), 0.5)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, single.float(), atol=1e-6, rtol=0)


def test_uint8_mode_rounds_between_passes_in_matlab_order() -> None:
    levels = torch.floor(_random(3, 12, 18) * 256).clamp(max=255)  # 8-bit levels, 0..255

    def to_uint8(x: torch.Tensor) -> torch.Tensor:  # MATLAB: round half away from zero, saturate
        return torch.floor(x + 0.5).clamp(0, 255)

    out = imresize(levels / 255, size=(15, 6), uint8=True) * 255
    mat_h, mat_w = resize_matrix(12, 15, 15 / 12), resize_matrix(18, 6, 6 / 18)
    # W shrinks while H grows, so MATLAB resizes W first and stores that intermediate image as uint8.
    torch.testing.assert_close(out, to_uint8(mat_h @ to_uint8(levels @ mat_w.T)))
    assert not torch.equal(out, to_uint8(to_uint8(mat_h @ levels) @ mat_w.T))


def test_imresize_reproduces_shared_set5_x4_lr_images() -> None:
    folder = SHARED_SR / "Set5" / "x4"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not available")
    for hr_path in sorted(folder.glob("*_HR.png")):
        hr = _load(hr_path)
        lr = _load(hr_path.with_name(hr_path.name.replace("_HR", "_LR")))
        height, width = hr.shape[-2:]
        hr = hr[:, : height - height % 4, : width - width % 4]  # modcrop, as the MATLAB benchmark code
        float_path = quantize(imresize(hr, 1 / 4))
        gray_levels = (float_path - lr).abs() * 255
        assert gray_levels.mean() < 0.5, hr_path.name
        assert (gray_levels < 0.5).double().mean() > 0.8, hr_path.name
        # Emulating MATLAB's uint8 arithmetic (rounded intermediate image) reproduces them bit for bit.
        assert torch.equal(imresize(hr, 1 / 4, uint8=True) * 255, lr * 255), hr_path.name


def test_sharpness_is_gradient_energy_relative_to_hr() -> None:
    generator = torch.Generator().manual_seed(0)
    hr = 0.25 + 0.5 * torch.rand(2, 3, 24, 24, generator=generator)
    assert torch.allclose(sharpness_y(hr, hr, 2), torch.ones(2, dtype=torch.float64))
    doubled = 0.5 + 2 * (hr - 0.5)  # Y is affine in RGB: twice the contrast, twice the gradients
    assert torch.allclose(sharpness_y(doubled, hr, 2), torch.full((2,), 2.0, dtype=torch.float64))
    blurred = torch.nn.functional.avg_pool2d(hr, 3, stride=1, padding=1, count_include_pad=False)
    assert (sharpness_y(blurred, hr, 2) < 0.7).all()
