"""StyleBank costs on this machine: training step time against Johnson's net, bytes per style, incremental speed.

    python experiments/stylebank/benchmark.py                 # CPU-sized defaults, random VGG (see README.md)
    python experiments/stylebank/benchmark.py --size 256 --batch 4 --joint-steps 2000 --weights imagenet

1. Per-step training time of ``task=stylebank`` (stylising and auto-encoder steps, and their (T+1)-cycle
   mean) and of ``task=style`` (Johnson et al.'s StyleTransferNet), same crop size, batch and loss
   (``loss=stylebank``), through the real tasks and a Lightning trainer.
2. Bytes added per new style: the parameters of one bank x 4 bytes (float32), next to the whole Johnson net.
3. Incremental learning: a StyleBank trained jointly on all styles for ``--joint-steps`` gives the style
   loss its bank for the last style reaches on held-out crops; a StyleBank trained on the others for the
   same number of steps then learns that style incrementally (new bank only), and we count the steps and
   training seconds until its style loss on the same crops is as low.

Everything is composed from the Hydra configs (``conf/``), so the numbers are those of ``src/train.py``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import default_collate

from perceptual.data.batch import IMAGE_KEY
from perceptual.data.sample import resolve_image
from perceptual.losses.builder import build_criterion
from perceptual.losses.criterion import PerceptualCriterion
from perceptual.tasks.base import TransformTask

REPO = Path(__file__).resolve().parents[2]
STYLES = ["mosaic", "immunohistochemistry", "hubble_deep_field", "colorwheel"]  # the last one is learnt incrementally


def compose_config(args: argparse.Namespace, *overrides: str) -> DictConfig:
    common = [
        f"loss_net.weights={args.weights}",
        f"data.image_size={args.size}",
        f"data.batch_size={args.batch}",
        "data.num_workers=0",
        f"task.style_size={args.style_size}",
        f"seed={args.seed}",
    ]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=[*common, *overrides])


def build(cfg: DictConfig) -> tuple[TransformTask, pl.LightningDataModule]:
    """Task and data as ``perceptual.training.train`` builds them."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    task = instantiate(cfg.task, net=instantiate(cfg.model), criterion=build_criterion(cfg.loss, cfg.loss_net))
    return task, datamodule


class StepTimer(pl.Callback):
    """Wall time of every training step (data loading excluded), and whether it was an auto-encoder step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.autoencoder: list[bool] = []

    def on_train_batch_start(self, trainer: pl.Trainer, task: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self.autoencoder.append(bool(getattr(task, "is_autoencoder_step", lambda: False)()))
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, task: pl.LightningModule, *args: Any) -> None:
        self.times.append(time.perf_counter() - self.start)


class StopAtStyleLoss(pl.Callback):
    """Every ``every`` steps, the style loss of ``bank`` on ``images``; stop once it is <= ``target``."""

    def __init__(self, evaluate: Any, target: float, every: int) -> None:
        self.evaluate, self.target, self.every = evaluate, target, every
        self.history: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, task: pl.LightningModule, *args: Any) -> None:
        if trainer.global_step % self.every == 0:
            loss = self.evaluate(task.net)
            self.history.append((trainer.global_step, loss))
            trainer.should_stop = loss <= self.target


def fit(task: TransformTask, datamodule: pl.LightningDataModule, steps: int, *callbacks: pl.Callback) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )
    trainer.fit(task, datamodule=datamodule)
    return trainer


def style_loss_meter(args: argparse.Namespace, style: str, bank: int) -> Any:
    """A function net -> style loss of ``bank`` against ``style`` on the held-out (validation) crops."""
    cfg = compose_config(args, "task=stylebank")
    criterion: PerceptualCriterion = build_criterion(cfg.loss, cfg.loss_net)
    criterion.set_styles([resolve_image(style, "style", args.style_size)])
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    images = default_collate([datamodule.val_set[i] for i in range(len(datamodule.val_set))])[IMAGE_KEY]

    @torch.no_grad()
    def evaluate(net: torch.nn.Module) -> float:
        was_training = net.training
        output = net.eval()(images, style_index=bank)
        net.train(was_training)
        losses = criterion(output, target=images, style_index=torch.zeros(len(images), dtype=torch.long))
        return float(losses.terms["style"])

    return evaluate


def step_times(args: argparse.Namespace) -> dict[str, float]:
    results = {}
    runs = {"stylebank": ["task=stylebank", f"data.styles={STYLES[:3]}"], "johnson": ["task=style", "loss=stylebank"]}
    for name, overrides in runs.items():
        timer = StepTimer()
        task, datamodule = build(compose_config(args, *overrides))
        fit(task, datamodule, args.warmup + args.timed_steps, timer)
        times, autoencoder = timer.times[args.warmup :], timer.autoencoder[args.warmup :]
        if name == "stylebank":
            stylise = [t for t, ae in zip(times, autoencoder) if not ae]
            autoencode = [t for t, ae in zip(times, autoencoder) if ae]
            results["stylebank_stylise_s"] = statistics.median(stylise)
            results["stylebank_autoencoder_s"] = statistics.median(autoencode)
            steps = task.stylise_steps  # T stylising steps and one auto-encoder step per cycle
            cycle = steps * results["stylebank_stylise_s"] + results["stylebank_autoencoder_s"]
            results["stylebank_cycle_mean_s"] = cycle / (steps + 1)
            results["stylebank_bank_bytes"] = 4 * sum(p.numel() for p in task.net.banks[0].parameters())
            results["stylebank_autoencoder_bytes"] = 4 * sum(p.numel() for p in task.net.autoencoder_parameters())
        else:
            results["johnson_step_s"] = statistics.median(times)
            results["johnson_net_bytes"] = 4 * sum(p.numel() for p in task.net.parameters())
    return results


def incremental_vs_joint(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    new_style = STYLES[-1]
    evaluate = style_loss_meter(args, new_style, bank=len(STYLES) - 1)
    timer = StepTimer()
    joint, datamodule = build(compose_config(args, "task=stylebank", f"data.styles={STYLES}"))
    fit(joint, datamodule, args.joint_steps, timer)
    target = evaluate(joint.net)
    results = {
        "joint_steps": args.joint_steps,
        "joint_s": sum(timer.times),
        "joint_step_s": statistics.median(timer.times),
        "joint_style_loss": target,
    }

    old, datamodule = build(compose_config(args, "task=stylebank", f"data.styles={STYLES[:-1]}"))
    trainer = fit(old, datamodule, args.joint_steps)
    trainer.save_checkpoint(folder / "old.ckpt")
    overrides = ["task=stylebank_incremental", f"init_ckpt={folder / 'old.ckpt'}", f"data.styles=[{new_style}]"]
    incremental, datamodule = build(compose_config(args, *overrides))
    results["incremental_start_style_loss"] = evaluate(incremental.net)
    timer, stop = StepTimer(), StopAtStyleLoss(evaluate, target, args.eval_every)
    fit(incremental, datamodule, args.max_incremental_steps, timer, stop)
    reached = stop.history[-1][1] <= target
    results |= {
        "incremental_reached": reached,
        "incremental_steps": stop.history[-1][0],
        "incremental_s": sum(timer.times),
        "incremental_step_s": statistics.median(timer.times),
        "incremental_style_loss": stop.history[-1][1],
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="training crop size")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--style-size", type=int, default=128, help="shorter side of the style images")
    parser.add_argument("--weights", default="random", help="loss network weights: random | imagenet | <path>")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timed-steps", type=int, default=12)
    parser.add_argument("--joint-steps", type=int, default=200)
    parser.add_argument("--max-incremental-steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("perceptual").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {args.size}px crops, batch {args.batch}, VGG {args.weights}")
    t = step_times(args)
    cycle, johnson = t["stylebank_cycle_mean_s"], t["johnson_step_s"]
    print(
        f"training step (s): StyleBank stylising {t['stylebank_stylise_s']:.3f}, auto-encoder "
        f"{t['stylebank_autoencoder_s']:.3f}, per step over a (T+1)-cycle {cycle:.3f}; Johnson StyleTransferNet "
        f"{johnson:.3f}; StyleBank / Johnson = {cycle / johnson:.2f}"
    )
    print(
        f"bytes per new style: {t['stylebank_bank_bytes']:,} (one bank, float32); shared encoder + decoder "
        f"{t['stylebank_autoencoder_bytes']:,}; a Johnson net (one per style) {t['johnson_net_bytes']:,}"
    )
    with tempfile.TemporaryDirectory() as folder:
        inc = incremental_vs_joint(args, Path(folder))
    print(
        f"joint: {inc['joint_steps']} steps on {len(STYLES)} styles, {inc['joint_s']:.1f} s of training (median step "
        f"{inc['joint_step_s']:.3f} s); style loss of the '{STYLES[-1]}' bank on held-out crops "
        f"{inc['joint_style_loss']:.4g}"
    )
    verb = "reached" if inc["incremental_reached"] else "did NOT reach"
    print(
        f"incremental: the new '{STYLES[-1]}' bank (style loss {inc['incremental_start_style_loss']:.4g} at start) "
        f"{verb} it after {inc['incremental_steps']} steps, {inc['incremental_s']:.1f} s of training (median step "
        f"{inc['incremental_step_s']:.3f} s; style loss {inc['incremental_style_loss']:.4g})"
    )


if __name__ == "__main__":
    main()
