"""Style-transfer speed: training throughput against a plain PyTorch loop, and stylisation latency.

    .venv/bin/python experiments/benchmarks/style_speed.py [--device cpu|cuda] [--steps 3] [--sizes 256 512 1024]

Training, batch 4 x 256^2, in one run: (a) a plain PyTorch loop written the way pytorch/examples' fast_neural_style
trains (same net, same losses: VGG-16 to relu4_3 over the output and over the content, Gram MSE, Adam), fp32; (b) this
framework's Lightning task in fp32, with channels_last, with task.compile, and at ``trainer.precision=auto`` (bf16-mixed
where the device computes bf16 natively, else fp32), each as s/step, images/s and the ratio to (a). Stylisation, with
``--sizes``: latency per image, eager fp32 against ``precision=auto`` + channels_last + compile, with the fast output's
PSNR against the fp32 output. The first lines name the device and, on a CPU, the flags that decide its fast paths.
The arithmetic of each training step (``torch.utils.flop_counter``: convolutions and matmuls, forward and backward)
is counted once for the plain loop and once for the task, and each row prints the GFLOP/s it reaches: how much of a
speed-up comes from doing less and how much from running faster.

Loss-network weights are random here: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from perceptual.cpu_bf16 import describe_cpu
from perceptual.inference.runner import Runner, describe_device
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, gram_matrix
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet
from perceptual.precision import trainer_precision
from perceptual.tasks.style import StyleTransferTask
from perceptual.training import flush_denormals, set_numerics

CONTENT = ["relu2_2"]
STYLE = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
BATCH = 4


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


def counted_flops(step: Callable[[], object]) -> int:
    """Floating-point operations of one call (convolutions and matmuls, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


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


def style_task(channels_last: bool = False, compile_step: bool = False) -> StyleTransferTask:
    """The task with the plain loop's net and losses, and fused Adam as configured for train.py."""
    criterion = PerceptualCriterion(
        {"content": FeatureLoss(1e5, CONTENT), "style": GramStyleLoss(1e10, STYLE, norm="mse")},
        loss_net=lambda layers: LossNetwork(layers, weights="random"),
    )
    return StyleTransferTask(
        style="mosaic",
        net=StyleTransferNet(),
        criterion=criterion,
        optimizer=lambda params: torch.optim.Adam(params, 1e-3, fused=True),
        channels_last=channels_last,
        compile=compile_step,
    )


def task_step_flops(device: torch.device, batch: torch.Tensor, style: torch.Tensor) -> int:
    """Arithmetic of the task's training step: its loss, forward and backward (the same at any precision)."""
    task = style_task().to(device)
    task.criterion.set_styles([style])
    return counted_flops(lambda: task.losses(batch, batch).total.backward())


def framework_step_time(
    device: torch.device, steps: int, precision: str, channels_last: bool, compile_step: bool, size: int
) -> float:
    """Median seconds of the task's training step (Lightning's loop)."""
    task = style_task(channels_last, compile_step)
    warmup = 2 if compile_step else 1  # the first step compiles, or sets up oneDNN's kernels
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator=device.type,
        devices=1,
        max_steps=steps + warmup,
        precision=trainer_precision(precision, device.type),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    loader = DataLoader(RandomImages((steps + warmup) * BATCH, size), batch_size=BATCH, drop_last=True)
    trainer.fit(task, train_dataloaders=loader)
    return sorted(timer.times)[len(timer.times) // 2]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / F.mse_loss(a, b)))


def stylize_table(device: torch.device, sizes: list[int], compile_net: bool) -> list[str]:
    torch.manual_seed(0)
    net = StyleTransferNet().eval()
    reference = Runner(net, str(device))
    fast = Runner(net, str(device), precision="auto", channels_last=True, compile=compile_net)
    rows = []
    for size in sizes:
        image = torch.rand(1, 3, size, size, device=device)
        repeats = 5 if size <= 512 else 3
        t32 = timed(lambda image=image: reference(image), 1, repeats, device)
        tfast = timed(lambda image=image: fast(image), 2, repeats, device)
        quality = psnr(fast(image), reference(image))
        rows.append(f"| {size} | {t32 * 1e3:.0f} | {tfast * 1e3:.0f} | {t32 / tfast:.2f}x | {quality:.1f} |")
    return rows


# (label, precision, channels_last, compile) of the task's variants
VARIANTS = (
    ("perceptual, fp32", "32-true", False, False),
    ("perceptual, fp32 + channels_last", "32-true", True, False),
    ("perceptual, fp32 + channels_last + compile", "32-true", True, True),
    ("perceptual, precision=auto (the default)", "auto", False, False),
    ("perceptual, precision=auto + channels_last", "auto", True, False),
    ("perceptual, precision=auto + channels_last + compile", "auto", True, True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per variant (after warm-up)")
    parser.add_argument("--size", type=int, default=256, help="training crop side")
    parser.add_argument("--sizes", type=int, nargs="*", default=[], help="stylisation sizes (none: no stylisation)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled variants")
    args = parser.parse_args()
    device = torch.device(args.device)
    flush_denormals()  # as train.py does, for the plain loop too
    set_numerics(deterministic=False)
    print(describe_device(device))
    if device.type == "cpu":
        print(f"{describe_cpu()}; load average {os.getloadavg()[0]:.1f}")
    print(f"trainer.precision=auto -> {trainer_precision('auto', device.type)}\n")

    batch = torch.rand(BATCH, 3, args.size, args.size, device=device)
    style = torch.rand(1, 3, 256, 256, device=device)
    plain_step = plain_loop_step(device, batch, style)
    plain_flops, task_flops = counted_flops(plain_step), task_step_flops(device, batch, style)
    print(
        f"arithmetic per step: plain loop {plain_flops / 1e9:.0f} GFLOP, task {task_flops / 1e9:.0f} GFLOP "
        f"({task_flops / plain_flops:.2f}: doing less alone is worth {plain_flops / task_flops:.2f}x)\n"
    )
    print(f"training, batch {BATCH} x {args.size}^2 (median of {args.steps} steps)")
    print("| variant | s/step | images/s | GFLOP/s | vs plain loop |")
    print("|---|---|---|---|---|")
    plain = timed(plain_step, 1, args.steps, device)
    print(
        f"| plain PyTorch loop (fast_neural_style style), fp32 | {plain:.3f} | {BATCH / plain:.2f} | "
        f"{plain_flops / plain / 1e9:.0f} | 1.00x |",
        flush=True,
    )
    for label, precision, channels_last, compile_step in VARIANTS:
        if compile_step and args.no_compile:
            continue
        try:
            seconds = framework_step_time(device, args.steps, precision, channels_last, compile_step, args.size)
        except RuntimeError as error:  # one variant failing (e.g. inside torch.compile) must not lose the others
            print(f"| {label} | failed: {str(error).splitlines()[0]} | | | |", flush=True)
            continue
        print(
            f"| {label} | {seconds:.3f} | {BATCH / seconds:.2f} | {task_flops / seconds / 1e9:.0f} | "
            f"{plain / seconds:.2f}x |",
            flush=True,
        )

    if args.sizes:
        fast_label = "precision=auto + channels_last" + ("" if args.no_compile else " + torch.compile")
        print(f"\nstylisation latency, batch 1, eager fp32 vs {fast_label}")
        print("| size | fp32 ms | fast ms | speed-up | PSNR fast vs fp32 (dB) |")
        print("|---|---|---|---|---|")
        print("\n".join(stylize_table(device, args.sizes, compile_net=not args.no_compile)))


if __name__ == "__main__":
    main()
