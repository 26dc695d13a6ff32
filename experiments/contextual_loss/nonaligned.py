"""Pixel loss against the contextual loss on non-aligned SR pairs, scored on held-out aligned images.

Trains ``experiment=pixel_nonaligned_sr`` and ``experiment=cx_nonaligned_sr`` through ``src/train.py`` (the user's
code path, one subprocess each) with the same seed, steps and data: x4 SR pairs from the built-in photographs whose
HR target is displaced by a random offset of up to ``data.make_sample.max_shift`` (8) HR pixels from the region the LR
input was made from; a control run trains the pixel loss on aligned pairs of the same size, cut from the photos
resized alike. Then scores the nets, and bicubic, on held-out images with ALIGNED targets (LR made from the
HR image by the training degradation, blur sigma then MATLAB bicubic): the built-in validation photographs at full
size and, when present, the Set5 HR images. Metrics: PSNR / SSIM on Y with ``scale`` border pixels cropped
(outputs quantised to 8 bit), and two blur measures relative to the target, on the same cropped Y: the variance of
the Laplacian and the mean gradient magnitude (1 = as much high-frequency energy as the target, < 1 blurrier, > 1
noise or over-sharpening).

Writes ``nonaligned_results.md`` (table) and ``nonaligned.png`` (centre crops: bicubic | runs | HR) beside this
file; the runs' TensorBoard logs (validation grids on aligned crops) are under ``--runs``.

    .venv/bin/python experiments/contextual_loss/nonaligned.py [--steps 400] [--evaluate-only] [HYDRA_OVERRIDE ...]
    .venv/bin/tensorboard --logdir outputs/contextual_loss_nonaligned
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw
from torch import Tensor

from perceptual.data.sample import VAL_PHOTOS, builtin_image
from perceptual.data.sr import SRDegradation, benchmark_files
from perceptual.evaluation.metrics import crop_border, mean_gradient, psnr_y, ssim_y
from perceptual.imaging.color import quantize, rgb_to_y
from perceptual.imaging.io import load_image, to_uint8
from perceptual.imaging.resize import imresize
from perceptual.inference.runner import Runner, load_net

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# label (run folder, table row, figure column) -> experiment. CONTROL trains the pixel loss on aligned pairs (see
# aligned_control): it separates the blur that misalignment causes from the blur of a short training.
RUNS = {"pixel_aligned": "pixel_nonaligned_sr", "pixel": "pixel_nonaligned_sr", "CX": "cx_nonaligned_sr"}
CONTROL = "pixel_aligned"
# HED's weights are a VGG-16: the CX run takes the VGG-16 variant of its loss (conf/loss/contextual_sr_vgg16.yaml)
VGG16_LOSS = {"CX": "loss=contextual_sr_vgg16"}
METHODS = ("bicubic", *RUNS)
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64).view(1, 1, 3, 3)
FIGURE_CROP = 128
HEADER = 20  # pixels of column labels above the figure
Outputs = dict[str, list[tuple[str, dict[str, Tensor]]]]  # set -> [(image name, {method or "HR": [1, 3, H, W]})]


def train_run(experiment: str, extra: list[str], run_dir: Path, args: argparse.Namespace) -> None:
    """Train one experiment through src/train.py; its wall time goes to ``<run_dir>/wall_time_s.txt``."""
    overrides = [
        f"experiment={experiment}",
        f"trainer.max_steps={args.steps}",
        f"trainer.val_check_interval={args.val_interval}",
        "trainer.accelerator=cpu",
        f"loss_net.weights={args.weights}",
        f"seed={args.seed}",
        f"hydra.run.dir={run_dir}",
        *args.overrides,
        *extra,  # last: the control stays aligned whatever the user overrides
    ]
    print(f"OMP_NUM_THREADS={args.threads} python src/train.py " + " ".join(overrides), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "src" / "train.py"), *overrides], cwd=REPO, env=env, check=True)
    (run_dir / "wall_time_s.txt").write_text(f"{time.perf_counter() - start:.0f}\n")


def aligned_control(overrides: list[str]) -> list[str]:
    """Overrides for aligned pairs of the shifted runs' target size, cut from photos resized to the same size."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        data = compose("train", overrides=[f"experiment={RUNS[CONTROL]}", *overrides]).data
    target = data.image_size - 2 * data.make_sample.max_shift
    resize_to = data.image_size * data.resize_to / target  # SampleDataModule resizes photos to image_size * resize_to
    return ["data.make_sample.max_shift=0", f"data.image_size={target}", f"data.resize_to={resize_to}"]


def held_out_sets(benchmark_dir: Path, scale: int) -> dict[str, list[tuple[str, Tensor]]]:
    """Named lists of (image name, HR [3, H, W]): the built-in validation photos, and Set5 when present."""
    sets = {"built-in val": [(name, builtin_image(name)) for name in VAL_PHOTOS]}
    set5 = benchmark_dir / "Set5" / f"x{scale}"
    if set5.is_dir():
        sets["Set5"] = [(name, load_image(hr)) for name, hr, _ in benchmark_files(set5, scale)]
    return sets


def high_frequency(y: Tensor) -> tuple[Tensor, Tensor]:
    """(variance of the Laplacian, mean gradient magnitude) per image of Y planes [B, 1, H, W]."""
    return F.conv2d(y, LAPLACIAN.to(y)).flatten(1).var(dim=1), mean_gradient(y)


def scores(sr: Tensor, hr: Tensor, scale: int) -> dict[str, float]:
    """PSNR, SSIM and the two high-frequency ratios (output / target) of one [1, 3, H, W] image pair."""
    sr_y, hr_y = (crop_border(rgb_to_y(x.double()), scale) for x in (sr, hr))
    (sr_lap, sr_grad), (hr_lap, hr_grad) = high_frequency(sr_y), high_frequency(hr_y)
    return {
        "PSNR": psnr_y(sr, hr, scale).item(),
        "SSIM": ssim_y(sr, hr, scale).item(),
        "Laplacian var ratio": (sr_lap / hr_lap).item(),
        "gradient ratio": (sr_grad / hr_grad).item(),
    }


def run_settings(runs: Path, configs: dict[str, DictConfig]) -> str:
    """The settings the runs trained with (from their saved configs) and their wall times, as markdown."""
    pixel, cx = configs["pixel"], configs["CX"]
    data = pixel.data
    lines = [
        f"x{pixel.scale}, {pixel.trainer.max_steps} steps, batch {data.batch_size}, HR crop {data.image_size} "
        f"(target {data.image_size - 2 * data.make_sample.max_shift}), max_shift {data.make_sample.max_shift}, "
        f"blur sigma {data.make_sample.blur_sigma}, seed {pixel.seed}, net width {pixel.model.width}, "
        f"Adam lr {pixel.task.optimizer.lr}; CX loss network: {cx.loss_net.arch}, weights={cx.loss_net.weights}.",
        "",
        "| run | experiment | training pairs | wall time (s) |",
        "|---|---|---|---:|",
    ]
    for label, experiment in RUNS.items():
        wall = runs / label / "wall_time_s.txt"
        shift = configs[label].data.make_sample.max_shift
        pairs = f"targets shifted by up to {shift} px" if shift else "aligned"
        lines.append(f"| {label} | {experiment} | {pairs} | {wall.read_text().strip() if wall.exists() else '?'} |")
    return "\n".join(lines)


def upscale_all(runs: Path, sets: dict[str, list[tuple[str, Tensor]]], scale: int, blur_sigma: float) -> Outputs:
    """8-bit outputs of bicubic and of every run's net, beside the aligned target, for each held-out image."""
    degrade = SRDegradation(scale, blur_sigma)  # aligned: max_shift = 0
    nets = {label: Runner(load_net(runs / label / "checkpoints" / "last.ckpt")[0], device="cpu") for label in RUNS}
    outputs: Outputs = {}
    for set_name, images in sets.items():
        outputs[set_name] = []
        for name, image in images:
            pair = degrade(image)
            lr, hr = pair["lr"][None], pair["hr"][None]
            result = {"bicubic": quantize(imresize(lr, size=tuple(hr.shape[-2:])))}
            result |= {label: quantize(net(lr)) for label, net in nets.items()}
            outputs[set_name].append((name, {**result, "HR": hr}))
    return outputs


def results_table(outputs: Outputs, scale: int) -> str:
    """Markdown table of the mean per-image scores per held-out set and method."""
    columns = ["PSNR", "SSIM", "Laplacian var ratio", "gradient ratio"]
    lines = [
        "| held-out set | method | " + " | ".join(columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for set_name, images in outputs.items():
        for method in METHODS:
            per_image = [scores(result[method], result["HR"], scale) for _, result in images]
            means = [sum(s[c] for s in per_image) / len(per_image) for c in columns]
            cells = [f"{means[0]:.2f}", f"{means[1]:.4f}", f"{means[2]:.3f}", f"{means[3]:.3f}"]
            lines.append(f"| {set_name} ({len(images)}) | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(outputs: Outputs, path: Path) -> None:
    """One row per held-out image: centre crops of bicubic | each run | HR, with a labelled header."""
    columns = [*METHODS, "HR"]
    rows = []
    for images in outputs.values():
        for _, result in images:
            h, w = result["HR"].shape[-2:]
            top, left = (h - FIGURE_CROP) // 2, (w - FIGURE_CROP) // 2
            crops = [result[c][0, :, top : top + FIGURE_CROP, left : left + FIGURE_CROP] for c in columns]
            rows.append(torch.cat(crops, dim=-1))
    body = Image.fromarray(to_uint8(torch.cat(rows, dim=-2)))
    canvas = Image.new("RGB", (body.width, body.height + HEADER), "white")
    canvas.paste(body, (0, HEADER))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(columns):
        draw.text((i * FIGURE_CROP + 4, 4), label, fill="black")
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400, help="training steps of each run")
    parser.add_argument("--val-interval", type=int, default=100, help="steps between validations (TensorBoard)")
    parser.add_argument(
        "--weights", default="random", help="loss_net.weights: random | imagenet | hed (CX on VGG-16) | <path.pth>"
    )
    parser.add_argument("--name", default="nonaligned", help="stem of the results table and figure written here")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=Path, default=REPO / "outputs" / "contextual_loss_nonaligned")
    parser.add_argument("--benchmark-dir", type=Path, default=REPO.parent / "shared" / "data" / "sr")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; on a shared, loaded CPU one thread ran the CX step ~7x faster than two",
    )
    parser.add_argument("--evaluate-only", action="store_true", help="score the existing runs, do not train")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run, e.g. data.image_size=80")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if not args.evaluate_only:
        for label, experiment in RUNS.items():
            extra = aligned_control(args.overrides) if label == CONTROL else []
            if args.weights == "hed" and label in VGG16_LOSS:
                extra.append(VGG16_LOSS[label])
            train_run(experiment, extra, args.runs / label, args)
    configs = {label: OmegaConf.load(args.runs / label / ".hydra" / "config.yaml") for label in RUNS}
    scale, blur_sigma = int(configs["pixel"].scale), float(configs["pixel"].data.make_sample.blur_sigma)
    with torch.inference_mode():
        outputs = upscale_all(args.runs, held_out_sets(args.benchmark_dir, scale), scale, blur_sigma)
    report = run_settings(args.runs, configs) + "\n\n" + results_table(outputs, scale) + "\n"
    (HERE / f"{args.name}_results.md").write_text(report)
    figure(outputs, HERE / f"{args.name}.png")
    print(report)


if __name__ == "__main__":
    main()
