"""Style-transfer speed: training throughput and stylisation latency, fp32 and the fast paths.

    .venv/bin/python experiments/benchmarks/style_speed.py [--device cpu|cuda] [--sizes 256 512 1024]

Training: images/s at batch 4 x 256^2 for (a) a plain PyTorch loop written the way
pytorch/examples' fast_neural_style trains (same net, same losses: VGG-16 to relu4_3 over the
output and over the content, Gram MSE, Adam) and (b) this framework's Lightning task, fp32 and with
its fast path (bf16 autocast + channels_last). Stylisation: latency per image at each size, eager
fp32 against the fast path, with the fast output's PSNR against the fp32 output.

Loss-network weights are random here: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from perceptual.inference.runner import Runner, describe_device
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, gram_matrix
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet
from perceptual.tasks.style import StyleTransferTask

CONTENT = ["relu2_2"]
STYLE = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def timed(step: Callable[[], object], warmup: int, repeats: int, device: torch.device) -> float:
    """Median seconds per call after warm-up (synchronising CUDA)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def plain_loop_step(device: torch.device, batch: torch.Tensor, style: torch.Tensor) -> Callable[[], None]:
    """The training step as pytorch/examples' fast_neural_style writes it (no framework)."""
    net = StyleTransferNet().to(device).train()
    vgg = LossNetwork(STYLE, weights="random").to(device)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    style_grams = [gram_matrix(f) for f in vgg(style).values()]

    def step() -> None:
        optimizer.zero_grad()
        y = net(batch)
        features_y, features_x = vgg(y), vgg(batch)  # full passes over output and content
        content = 1e5 * F.mse_loss(features_y["relu2_2"], features_x["relu2_2"])
        style_loss = sum(
            F.mse_loss(gram_matrix(fy), gs.expand(len(batch), -1, -1))
            for fy, gs in zip(features_y.values(), style_grams)
        )
        (content + 1e10 * style_loss).backward()
        optimizer.step()

    return step


class RandomImages(Dataset):
    def __init__(self, count: int, size: int) -> None:
        self.images = torch.rand(count, 3, size, size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index]}


class StepTimer(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self.start = warmup, [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        if batch_idx >= self.warmup:
            self.times.append(time.perf_counter() - self.start)


def framework_step_time(device: torch.device, steps: int, fast: bool, batch_size: int, size: int) -> float:
    criterion = PerceptualCriterion(
        {"content": FeatureLoss(1e5, CONTENT), "style": GramStyleLoss(1e10, STYLE, norm="mse")},
        loss_net=lambda layers: LossNetwork(layers, weights="random"),
    )
    task = StyleTransferTask(
        style="mosaic",
        net=StyleTransferNet(),
        criterion=criterion,
        optimizer=lambda params: torch.optim.Adam(params, 1e-3),
        channels_last=fast,
    )
    timer = StepTimer(warmup=2)
    trainer = pl.Trainer(
        accelerator=device.type,
        devices=1,
        max_steps=steps + 2,
        precision="bf16-mixed" if fast else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    loader = DataLoader(RandomImages((steps + 2) * batch_size, size), batch_size=batch_size, drop_last=True)
    trainer.fit(task, train_dataloaders=loader)
    return sorted(timer.times)[len(timer.times) // 2]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / F.mse_loss(a, b)))


def stylize_table(device: torch.device, sizes: list[int], compile_net: bool) -> list[str]:
    torch.manual_seed(0)
    net = StyleTransferNet().eval()
    reference = Runner(net, str(device))
    fast = Runner(net, str(device), precision="bf16", channels_last=True, compile=compile_net)
    rows = []
    for size in sizes:
        image = torch.rand(1, 3, size, size, device=device)
        repeats = 5 if size <= 512 else 3
        t32 = timed(lambda image=image: reference(image), 1, repeats, device)
        tfast = timed(lambda image=image: fast(image), 2, repeats, device)
        quality = psnr(fast(image), reference(image))
        rows.append(f"| {size} | {t32 * 1e3:.0f} | {tfast * 1e3:.0f} | {t32 / tfast:.2f}x | {quality:.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per variant")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out of the fast path")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"{describe_device(device)}\n")

    batch_size, size = 4, 256
    batch = torch.rand(batch_size, 3, size, size, device=device)
    style = torch.rand(1, 3, size, size, device=device)
    plain = timed(plain_loop_step(device, batch, style), 2, args.steps, device)
    ours32 = framework_step_time(device, args.steps, fast=False, batch_size=batch_size, size=size)
    ours_fast = framework_step_time(device, args.steps, fast=True, batch_size=batch_size, size=size)
    print(f"training, batch {batch_size} x {size}^2 (median step)")
    print("| variant | s/step | images/s | vs plain loop |")
    print("|---|---|---|---|")
    for label, seconds in (
        ("plain PyTorch loop (fast_neural_style style), fp32", plain),
        ("perceptual, fp32", ours32),
        ("perceptual, bf16-mixed + channels_last", ours_fast),
    ):
        print(f"| {label} | {seconds:.3f} | {batch_size / seconds:.1f} | {plain / seconds:.2f}x |")

    fast_label = "bf16 + channels_last" + ("" if args.no_compile else " + torch.compile")
    print(f"\nstylisation latency, batch 1, eager fp32 vs {fast_label}")
    print("| size | fp32 ms | fast ms | speed-up | PSNR fast vs fp32 (dB) |")
    print("|---|---|---|---|---|")
    print("\n".join(stylize_table(device, args.sizes, compile_net=not args.no_compile)))


if __name__ == "__main__":
    main()
