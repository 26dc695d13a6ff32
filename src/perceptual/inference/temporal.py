"""Temporal stability of a transformed video: the input's optical flow, the warping error that measures flicker
(Lai et al., ECCV 2018), and a stabiliser that keeps the net's stride grid moving with the scene and blends each
output with the previous output carried along the flow.

Flow comes from the *input* frames, with a classical method that needs no weights (OpenCV's DIS or Farneback).
Pixels where it cannot be trusted -- occluded, or carried in from outside the frame -- are found by forward-backward
consistency (Sundaram et al. 2010; the check Ruder et al. 2016 and Lai et al. 2018 use): following the flow from frame
t to t-1 and the reverse flow back must return close to the start.

Frames are float RGB tensors in [0, 1]; a flow is [.., 2, H, W] holding (x, y) displacements in pixels, such that
``source(p) ~ target(p + flow(p))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from perceptual.choices import check_choice
from perceptual.errors import ConfigError
from perceptual.imaging.io import to_uint8
from perceptual.optional import require

FlowMethod = Literal["dis", "farneback"]
TemporalMode = Literal["stable", "none"]
# Forward-backward check: p is occluded when |w + w'|^2 > RATIO * (|w|^2 + |w'|^2) + OFFSET, with w the flow at p
# and w' the reverse flow at p + w (Sundaram et al. 2010, Ruder et al. 2016).
CONSISTENCY_RATIO = 0.01
CONSISTENCY_OFFSET = 0.5
MIN_RELIABLE = 0.1  # global motion needs at least this share of reliable pixels


def optical_flow(source: Tensor, target: Tensor, method: FlowMethod = "dis") -> Tensor:
    """Flow [2, H, W] from ``source`` [3, H, W] to ``target`` (their luma), by OpenCV's DIS (medium preset) or
    Farneback method."""
    check_choice("flow", method, FlowMethod)
    cv2 = require("cv2", "optical flow (temporal=stable, the warping error)")
    a, b = (cv2.cvtColor(to_uint8(frame), cv2.COLOR_RGB2GRAY) for frame in (source, target))
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
    return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1)


def warp(image: Tensor, flow: Tensor, mode: str = "bilinear") -> tuple[Tensor, Tensor]:
    """``image`` [B, C, H, W] sampled at ``p + flow(p)`` (``bilinear`` or ``bicubic``; edges repeated), and where
    that position is inside the frame ([B, 1, H, W] bool)."""
    height, width = image.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=flow.dtype, device=flow.device),
        torch.arange(width, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(image, grid.to(image.dtype), mode=mode, padding_mode="border", align_corners=True)
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return warped, inside[:, None]


def translate(images: Tensor, shifts: Tensor) -> Tensor:
    """``images`` [B, C, H, W] moved by ``shifts`` [B, 2] (x, y) pixels: bicubic, so that sub-pixel shifts keep fine
    texture that bilinear interpolation would blur; edges repeated."""
    flow = -shifts.to(images.device, images.dtype).view(-1, 2, 1, 1).expand(-1, 2, *images.shape[-2:])
    return warp(images, flow, mode="bicubic")[0]


def consistency_mask(flow: Tensor, reverse: Tensor) -> Tensor:
    """[B, 1, H, W] bool: where ``flow`` [B, 2, H, W] (t -> t-1) is reliable -- it lands inside the frame and the
    ``reverse`` flow (t-1 -> t) there brings it back (see :data:`CONSISTENCY_RATIO`)."""
    reverse_there, inside = warp(reverse, flow)
    mismatch = (flow + reverse_there).square().sum(dim=1, keepdim=True)
    scale = flow.square().sum(dim=1, keepdim=True) + reverse_there.square().sum(dim=1, keepdim=True)
    return inside & (mismatch <= CONSISTENCY_RATIO * scale + CONSISTENCY_OFFSET)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """``flow`` [B, 2, h, w] at ``size`` (H, W), displacements scaled with the frame (SR outputs)."""
    height, width = flow.shape[-2:]
    if (height, width) == tuple(size):
        return flow
    resized = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    return resized * torch.tensor([size[1] / width, size[0] / height], device=flow.device).view(1, 2, 1, 1)


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    return mask if tuple(mask.shape[-2:]) == tuple(size) else F.interpolate(mask.float(), size=size, mode="nearest") > 0


def reliable_flow(current: Tensor, previous: Tensor, method: FlowMethod = "dis") -> tuple[Tensor, Tensor]:
    """Flow [1, 2, H, W] from input frame ``current`` to ``previous`` ([3, H, W] each) and where it is reliable
    ([1, 1, H, W] bool, from the flow computed both ways)."""
    backward = optical_flow(current, previous, method)[None]
    forward = optical_flow(previous, current, method)[None]
    return backward, consistency_mask(backward, forward)


def input_motion(frames: Tensor, method: FlowMethod = "farneback") -> tuple[Tensor, Tensor]:
    """Flows [T-1, 2, H, W] from each frame of ``frames`` [T, 3, H, W] to the one before, and their reliability
    masks [T-1, 1, H, W] (what :func:`warping_error` needs)."""
    pairs = [reliable_flow(frames[t], frames[t - 1], method) for t in range(1, len(frames))]
    return torch.cat([flow for flow, _ in pairs]), torch.cat([mask for _, mask in pairs])


def warping_error(outputs: Tensor, flows: Tensor, masks: Tensor) -> Tensor:
    """Warping error of each consecutive pair of ``outputs`` [T, C, H, W] (Lai et al. 2018): the mean over reliable
    pixels and channels of ``(O_t - warp(O_{t-1}, flow_t))^2``, with the input's ``flows`` [T-1, 2, h, w] (t -> t-1)
    and ``masks`` [T-1, 1, h, w] resized to the output size. Returns [T-1]; its mean is the clip's figure."""
    size = tuple(outputs.shape[-2:])
    flows, masks = resize_flow(flows.to(outputs.device), size), resize_mask(masks.to(outputs.device), size)
    warped, _ = warp(outputs[:-1], flows)
    squared = (outputs[1:] - warped).square() * masks
    return squared.sum(dim=(1, 2, 3)) / (masks.sum(dim=(1, 2, 3)) * outputs.shape[1]).clamp_min(1)


def global_motion(flow: Tensor, mask: Tensor) -> Tensor:
    """The scene's dominant translation (x, y): the median of ``flow`` [2, H, W] over reliable pixels ``mask``
    [1, H, W]; zero when under :data:`MIN_RELIABLE` of the frame is reliable (a cut, a flash)."""
    if mask.float().mean() < MIN_RELIABLE:
        return flow.new_zeros(2)
    return flow[:, mask[0]].median(dim=1).values


class Stabiliser:
    """Stabilises a transformed video frame by frame, following the input's optical flow.

    1. Stride-grid alignment (``align``): a net that downsamples by ``stride`` (4 for the Johnson and StyleBank
       style nets) is translation-equivariant only for shifts by multiples of ``stride``; when the camera pans by
       anything else, the same scene point meets the stride grid at another phase and gets other brush strokes:
       most of the flicker of per-frame stylisation. Each frame is moved by its accumulated global motion
       (:func:`global_motion`) modulo ``stride`` -- sub-pixel, bicubic -- so the grid moves with the scene, and the
       output is moved back.
    2. Flow blending (``blend`` > 0): ``o_t = s_t + blend * m_t * (warp(o_{t-1}) - s_t)``, with ``s_t`` the aligned
       output, ``o_{t-1}`` the previous stabilised output warped along the flow and ``m_t`` the flow's reliability:
       an exponential moving average along the motion, for the flicker alignment cannot remove (parts of the scene
       moving on their own, rotation, zoom, noise); occluded and newly visible pixels take the fresh output.
       Averaging also softens the texture, so it is off by default (see experiments/video/README.md).

    Call it with the per-batch ``apply`` ([B, 3, h, w] -> [B, 3, H, W]) on consecutive batches of frames.
    """

    def __init__(self, stride: int = 1, blend: float = 0.0, flow: FlowMethod = "dis", align: bool = True) -> None:
        if not 0.0 <= blend < 1.0:
            raise ConfigError(f"video.blend={blend} must be in [0, 1) (0: no blending, 1 would freeze the first frame)")
        check_choice("video.flow", flow, FlowMethod)
        self.stride = stride if align else 1
        self.blend = blend
        self.flow = flow
        self.offset = torch.zeros(2)  # accumulated global motion (x, y) in input pixels
        self.previous: tuple[Tensor, Tensor] | None = None  # (input, stabilised output) of the last frame

    def __call__(self, apply: Callable[[Tensor], Tensor], frames: Tensor) -> Tensor:
        motion = self._motion(frames)
        outputs = self._aligned(apply, frames, motion) if self.stride > 1 else apply(frames)
        stabilised = []
        for frame, output, flow_and_mask in zip(frames, outputs, motion):
            if flow_and_mask is not None and self.blend > 0:
                flow, mask, size = *flow_and_mask, tuple(output.shape[-2:])
                flow, mask = resize_flow(flow.to(output.device), size), resize_mask(mask.to(output.device), size)
                warped, _ = warp(self.previous[1][None], flow)
                output = output + self.blend * mask[0] * (warped[0] - output)
            self.previous = (frame, output)
            stabilised.append(output)
        return torch.stack(stabilised)

    def _motion(self, frames: Tensor) -> list[tuple[Tensor, Tensor] | None]:
        """Flow (t -> t-1) and its reliability for each frame; None for the first frame, after a change of frame
        size, and when neither alignment nor blending needs it."""
        motion: list[tuple[Tensor, Tensor] | None] = []
        previous = self.previous[0] if self.previous is not None else None
        for frame in frames:
            needed = previous is not None and previous.shape == frame.shape and (self.stride > 1 or self.blend > 0)
            motion.append(reliable_flow(frame, previous, self.flow) if needed else None)
            previous = frame
        return motion

    def _aligned(self, apply: Callable[[Tensor], Tensor], frames: Tensor, motion: list) -> Tensor:
        """``apply`` on frames moved by their global motion modulo the stride, so that the stride grid follows the
        scene (sub-pixel, on a canvas ``stride`` pixels larger), and the outputs moved back."""
        shifts = []
        for flow_and_mask in motion:
            if flow_and_mask is not None:
                self.offset += global_motion(flow_and_mask[0][0], flow_and_mask[1][0])
            shifts.append(self.offset.remainder(self.stride))
        shifts = torch.stack(shifts)
        canvas = translate(F.pad(frames, (0, self.stride, 0, self.stride), mode="replicate"), shifts)
        outputs = apply(canvas)
        scale = outputs.shape[-1] // canvas.shape[-1]
        back = translate(outputs, -scale * shifts)
        return back[..., : frames.shape[-2] * scale, : frames.shape[-1] * scale].clamp(0, 1)


def make_stabiliser(
    mode: TemporalMode, stride: int = 1, blend: float = 0.0, flow: FlowMethod = "dis", align: bool = True
) -> Stabiliser | None:
    """The stabiliser for ``temporal=<mode>``: a :class:`Stabiliser`, or None for ``none`` (each frame on its own)."""
    check_choice("temporal", mode, TemporalMode)
    return Stabiliser(stride, blend, flow, align) if mode == "stable" else None


def panning_clip(
    photo: Tensor,
    size: tuple[int, int],
    step: tuple[int, int],
    frames: int,
    noise: float = 0.0,
    seed: int = 0,
    zoom: int = 1,
) -> tuple[Tensor, Tensor, Tensor]:
    """A synthetic clip with known motion: a window panning over ``photo`` [3, H, W] by ``step`` (dx, dy) whole
    photo pixels per frame, shrunk by ``zoom`` (box filter) to ``size`` (H, W), plus Gaussian noise of std ``noise``
    drawn anew for every frame. With ``zoom`` > 1 the motion is ``step / zoom`` pixels per frame: sub-pixel pans
    whose flow is still exact.

    Returns the frames [T, 3, H, W] and the exact flows [T-1, 2, H, W] (t -> t-1, the constant ``step / zoom``) with
    their masks [T-1, 1, H, W] (pixels whose source lies inside the previous frame).
    """
    (height, width), (dx, dy) = (size[0] * zoom, size[1] * zoom), step
    last_x, last_y = (frames - 1) * dx, (frames - 1) * dy
    if min(last_x, last_y, 0) < 0 or last_y + height > photo.shape[-2] or last_x + width > photo.shape[-1]:
        raise ConfigError(f"a {height}x{width} window moving by {step} for {frames} frames leaves the photo")
    clip = torch.stack([photo[:, t * dy : t * dy + height, t * dx : t * dx + width] for t in range(frames)])
    clip = F.avg_pool2d(clip, zoom) if zoom > 1 else clip
    generator = torch.Generator().manual_seed(seed)
    clip = (clip + noise * torch.randn(clip.shape, generator=generator)).clamp(0, 1)
    flows = torch.tensor([dx / zoom, dy / zoom]).view(1, 2, 1, 1).expand(frames - 1, 2, *size).contiguous()
    _, inside = warp(clip[:-1], flows)
    return clip, flows, inside
