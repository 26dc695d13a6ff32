"""Super-resolution speed: training throughput and upscaling latency, fp32 eager against the fast paths.

    .venv/bin/python experiments/sr/benchmark.py [--device cpu|cuda] [--scale 4] [--size 512] [--no-compile]

Training: one optimiser step as ``SuperResolutionTask.training_step`` computes it (SR net, feature loss at relu2_2
+ TV, Adam) on batches of 4 HR crops of 288 (LR 72 at x4), in fp32 and under the fast path of ``trainer.precision=
bf16-mixed task.channels_last=true`` (bf16 autocast + channels_last). Lightning's loop adds a few ms per step, nothing
next to the step itself. Upscaling: latency of one LR image (scikit-image's 512x512 astronaut) at x4 through
``perceptual.inference.runner.Runner``, eager fp32 against bf16 + channels_last with and without torch.compile, with the
PSNR of each fast output against the fp32 one.

Weights are random (loss network and SR net): speed does not depend on their values. The SR net's BatchNorm
statistics are set from the photo so that its output has an image's range (see ``calibrated_net``).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.benchmark import Timer
from torchvision.transforms.v2 import functional as TF

from perceptual.data.sample import builtin_image
from perceptual.evaluation.metrics import psnr
from perceptual.inference.runner import Runner, describe_device
from perceptual.losses import FeatureLoss, PerceptualCriterion, TotalVariationLoss
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import SuperResolutionNet


def seconds_per_call(call: Callable[[], object], min_time: float) -> float:
    """Median seconds per call: torch.utils.benchmark warms up (one call at least, e.g. torch.compile's), then calls
    for at least ``min_time`` seconds (CUDA synchronised). A one-call minimum keeps slow CPU runs short."""
    timer = Timer("call()", globals={"call": call}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_time).median


def training_step(device: torch.device, scale: int, batch_size: int, crop: int, fast: bool) -> Callable[[], None]:
    """A closure running one SR training step on random crops (fp32, or bf16 autocast + channels_last)."""
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=scale).to(device).train()
    criterion = PerceptualCriterion(
        {"feature": FeatureLoss(1.0, ["relu2_2"]), "tv": TotalVariationLoss(1e-6)},
        loss_net=LossNetwork(["relu2_2"], weights="random"),
    ).to(device)
    hr = torch.rand(batch_size, 3, crop, crop, device=device)
    lr = torch.rand(batch_size, 3, crop // scale, crop // scale, device=device)
    if fast:
        net, criterion = net.to(memory_format=torch.channels_last), criterion.to(memory_format=torch.channels_last)
        hr, lr = hr.contiguous(memory_format=torch.channels_last), lr.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            loss = criterion(net(lr), target=hr).total
        loss.backward()
        optimizer.step()

    return step


def calibrated_net(scale: int, image: Tensor) -> SuperResolutionNet:
    """A random SR net with BatchNorm statistics from one train-mode pass over ``image``: its output then spans
    [0, 1] as a trained net's does, so the PSNR of a fast path against fp32 means something (with the initial
    statistics the output is 0.5 +/- 0.01 everywhere and any small error looks tiny)."""
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=scale)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one pass sets the statistics
    with torch.no_grad():
        net.train()(image)
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=288, help="HR crop side (LR = crop / scale)")
    parser.add_argument("--size", type=int, default=512, help="LR side for the upscaling latency")
    parser.add_argument("--min-time", type=float, default=10.0, help="seconds of timed calls per variant")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variant")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{describe_device(device)}\n")

    print(f"training, x{args.scale}, batch {args.batch_size} x {args.crop}^2 HR ({args.crop // args.scale}^2 LR)")
    print("| variant | s/step | images/s | speed-up |")
    print("|---|---|---|---|")
    steps = {
        label: seconds_per_call(training_step(device, args.scale, args.batch_size, args.crop, fast), args.min_time)
        for label, fast in (("fp32", False), ("bf16 autocast + channels_last", True))
    }
    for label, seconds in steps.items():
        print(f"| {label} | {seconds:.3f} | {args.batch_size / seconds:.2f} | {steps['fp32'] / seconds:.2f}x |")

    photo = builtin_image("astronaut")[None]
    net = calibrated_net(args.scale, TF.resize(photo, [128, 128], antialias=True))
    image = TF.resize(photo, [args.size, args.size], antialias=True).to(device)
    options = {"fp32 eager": {}, "bf16 + channels_last": {"precision": "bf16", "channels_last": True}}
    if not args.no_compile:
        options["bf16 + channels_last + torch.compile"] = {"precision": "bf16", "channels_last": True, "compile": True}
    # A copy each: Runner converts the net it is given in place (device, memory format).
    variants = {label: Runner(copy.deepcopy(net), str(device), **kwargs) for label, kwargs in options.items()}
    side = args.size * args.scale
    print(f"\nupscaling latency, batch 1, {args.size}^2 LR -> {side}^2 at x{args.scale}")
    print("| variant | s/image | speed-up | PSNR vs fp32 (dB) |")
    print("|---|---|---|---|")
    reference = variants["fp32 eager"](image)
    latency = {
        label: seconds_per_call(lambda runner=runner: runner(image), args.min_time)
        for label, runner in variants.items()
    }
    for label, seconds in latency.items():
        quality = f"{psnr(variants[label](image), reference, 1.0).item():.1f}" if label != "fp32 eager" else "-"
        print(f"| {label} | {seconds:.3f} | {latency['fp32 eager'] / seconds:.2f}x | {quality} |")


if __name__ == "__main__":
    main()
