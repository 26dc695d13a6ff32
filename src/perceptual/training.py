"""Compose a training run from a Hydra config: data, net, criterion, task, trainer."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger, TensorBoardLogger

from perceptual.callbacks import AtomicCheckpointIO, DivergenceGuard, ProcessGroupTeardown, RandomState
from perceptual.checkpoints import UnsafeCheckpointError, load_file
from perceptual.config_types import check_types
from perceptual.cpu_bf16 import warn_if_emulated
from perceptual.errors import ConfigError, DataError
from perceptual.inference.runner import load_net
from perceptual.losses.builder import build_criterion
from perceptual.lossnet.weights import RANDOM_WEIGHTS_WARNING, WeightsKind, WeightsSource
from perceptual.nets.base import TransformNet
from perceptual.precision import trainer_precision
from perceptual.tasks.base import TransformTask

log = logging.getLogger(__name__)

HPARAM_METRICS = ("train/loss", "val/loss", "val/psnr", "val/ssim")


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """Scalar config values keyed by dotted path, for TensorBoard's hparams view of a sweep."""
    container = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, list):
            flat[prefix[:-1]] = str(node)
        elif node is None or isinstance(node, (bool, int, float, str)):
            flat[prefix[:-1]] = "null" if node is None else node

    walk({k: v for k, v in container.items() if k not in ("hydra", "paths", "callbacks", "logger")}, "")
    return flat


def log_hparams(loggers: list[Logger], cfg: DictConfig) -> None:
    """Record the flattened config (``hparams.yaml`` beside each logger's files)."""
    params = flat_hparams(cfg)
    for logger in loggers:
        logger.log_hyperparams(params)


def log_hparams_summary(loggers: list[Logger], cfg: DictConfig, metrics: Mapping[str, float], step: int) -> None:
    """TensorBoard's HParams view: the config beside the run's final values of :data:`HPARAM_METRICS`, so that a
    multirun directory compares jobs by their final losses and PSNR. Lightning's public ``log_hyperparams(params,
    metrics=)`` also logs the values as scalars: at ``step``, the last step's, they repeat the last logged ones."""
    final = {name: metrics[name] for name in HPARAM_METRICS if name in metrics}
    if not final:
        return
    params = flat_hparams(cfg)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics=final, step=step)
            logger.finalize("success")  # fit closed the event writer and this reopened one: flush and close it too


def log_loss_network_note(source: WeightsSource, loggers: list[Logger], output_dir: Path) -> None:
    """Say in TensorBoard which weights the losses were computed with (:meth:`WeightsSource.note`: the source, its
    provenance and preprocessing, and why ``auto`` chose it); random ones also get a file in the run directory, so
    that nobody mistakes a smoke run for a result."""
    note = source.note()
    if source.kind is WeightsKind.RANDOM:
        output_dir.mkdir(parents=True, exist_ok=True)  # Hydra makes it for a command; a library call may not have
        (output_dir / "WARNING_random_loss_network.txt").write_text(RANDOM_WEIGHTS_WARNING + "\n")
    for logger in loggers:
        if hasattr(logger.experiment, "add_text"):
            logger.experiment.add_text("loss_network", note)


RESUME_KEYS = ("state_dict", "optimizer_states", "loops")  # what Lightning needs to resume


def checkpoint_path(path: str | None, trust: bool = False) -> str | None:
    """``ckpt_path`` when it is a checkpoint a run can resume from; else a one-line :class:`DataError`.

    The check memory-maps the file (``mmap=True``): it reads the pickled structure, not the tensors, so it costs
    little even for a large checkpoint that Lightning then loads again.
    """
    if path is None:
        return None
    if not Path(path).is_file():
        raise DataError(
            f"ckpt_path={path} does not exist; pass an existing .ckpt (e.g. outputs/.../checkpoints/last.ckpt)"
        )
    try:
        checkpoint = load_file(path, trust, mmap=True, what="ckpt_path")
    except UnsafeCheckpointError:
        raise
    except Exception as error:  # truncated, corrupt or foreign file: torch raises many kinds
        raise DataError(
            f"ckpt_path={path} cannot be read ({type(error).__name__}); it is corrupt or not a checkpoint: pass "
            "another one, e.g. a step_*.ckpt beside it"
        ) from None
    missing = [key for key in RESUME_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise DataError(
            f"ckpt_path={path} holds no training state to resume ({', '.join(missing)} missing: a zoo entry or "
            "an exported net?); pass a checkpoints/*.ckpt written by train.py"
        )
    return path


def net_kind(net: TransformNet) -> str:
    """The class of ``net`` and, for super-resolution, its scale: what a fine-tuned net must share with the run."""
    scale = net.config().get("scale")
    return type(net).__name__ + ("" if scale is None else f" scale={scale}")


def initial_net(cfg: DictConfig, trust: bool = False) -> TransformNet:
    """The net a run starts from: the configured one (``model.*``) or, with ``init_ckpt``, the trained net of that
    checkpoint or zoo entry, to fine-tune (its architecture and weights, with ``init_net_options`` changed; a fresh
    optimiser and step 0, unlike ``ckpt_path``, which resumes). StyleBank's incremental mode reads ``init_ckpt``
    itself (it freezes the net)."""
    configured = instantiate(cfg.model)
    source = cfg.get("init_ckpt")
    options = cfg.get("init_net_options")
    options = OmegaConf.to_container(options) if options else {}
    fine_tuning = bool(source) and not cfg.task.get("incremental")
    if options and not fine_tuning:
        raise ConfigError("init_net_options change the net of init_ckpt when fine-tuning; drop them, or give init_ckpt")
    if not fine_tuning:
        return configured
    net, _ = load_net(source, trust)
    if net_kind(net) != net_kind(configured):
        raise DataError(
            f"init_ckpt={source} holds a {net_kind(net)}, but this run trains a {net_kind(configured)}; pick a "
            "checkpoint of the same task (and scale), or drop init_ckpt"
        )
    if options:
        net = with_options(net, options)
    log.info("fine-tuning the net of init_ckpt=%s (model.* is ignored; its config: %s)", source, net.config())
    return net.train()


def with_options(net: TransformNet, options: Mapping[str, Any]) -> TransformNet:
    """``net`` rebuilt with some constructor options changed and its weights kept: only options that leave every
    weight's shape as it is (``upsample`` between ``nearest`` and ``bilinear``, ``output``) can change."""
    current = {key: value for key, value in net.config().items() if key != "_target_"}
    unknown = sorted(set(options) - set(current))
    if unknown:
        raise ConfigError(
            f"init_net_options: {', '.join(unknown)} is not an option of {type(net).__name__} "
            f"(it has {', '.join(sorted(current))})"
        )
    rebuilt = type(net)(**{**current, **options})
    try:
        rebuilt.load_state_dict(net.state_dict())
    except RuntimeError:
        raise ConfigError(
            f"init_net_options={dict(options)} change the shapes of the net's weights; only options that keep them "
            "(e.g. upsample=nearest|bilinear) can change when fine-tuning"
        ) from None
    return rebuilt


def with_trainer_precision(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``trainer.precision=auto`` resolved for the accelerator (:func:`perceptual.precision.
    trainer_precision`), so that the Trainer and the run config recorded in checkpoints name what was run."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.precision = trainer_precision(cfg.trainer.precision, cfg.trainer.get("accelerator", "auto"))
    return cfg


def flush_denormals() -> None:
    """Treat subnormal floats as zero on the CPU (as TensorFlow does by default).

    Gradients that fade through saturated activations become subnormal, and x86 convolutions on
    subnormals run about 8x slower: a 64 px style-training step took 12 s instead of 1.5 s. Values
    below 1e-38 carry nothing a perceptual loss can use.
    """
    torch.set_flush_denormal(True)


def set_numerics(deterministic: bool) -> None:
    """The process-wide GPU numerics of a training run, each chosen for a reason (Lightning leaves them to us)."""
    # Every step sees the same shapes (fixed crops and batch size): cuDNN's one-off search for each convolution's
    # fastest algorithm pays for itself within a few steps. A deterministic run keeps the default algorithms.
    torch.backends.cudnn.benchmark = not deterministic
    # fp32 matmuls (the Gram matrices, contextual similarities) may use TF32 on Ampere and newer GPUs: fp32 accumulation
    # with a 10-bit mantissa errs less than the bf16 features that bf16-mixed feeds them, at several times the speed.
    torch.set_float32_matmul_precision("high")


def save_final_checkpoint(trainer: pl.Trainer) -> None:
    """Write ``last.ckpt`` at the step training stopped at.

    ModelCheckpoint saves every N steps only, so a run stopped by ``trainer.max_time``, or by a ``max_steps`` that is
    not a multiple of N, would otherwise lose every step since its last periodic save.
    """
    callback = trainer.checkpoint_callback
    if not isinstance(callback, ModelCheckpoint) or not callback.save_last or callback.dirpath is None:
        return
    if trainer.global_step > 0:
        # weights_only=False: a full checkpoint (optimiser, loops, callbacks), so the run can resume from it.
        last = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        trainer.save_checkpoint(last, weights_only=False)


def ddp_strategy(strategy: Any, task: TransformTask) -> Any:
    """``strategy`` with DDP's search for unused parameters switched on where ``task`` needs it.

    A StyleBank step leaves the banks of absent styles without a gradient, which plain DDP rejects. With the search
    on, a bank no process used keeps no gradient (Adam leaves it alone, as on one device); one that another process
    used gets the averaged gradient, so the weights stay identical everywhere. Strategies given as objects are
    left as they are.
    """
    if task.unused_parameters and strategy in ("ddp", "ddp_spawn"):
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def check_schedule_length(cfg: DictConfig) -> None:
    """A schedule that spans ``trainer.max_steps`` (``scheduler=cosine``) needs a run bounded in steps: at -1 the
    cosine would swing between the full rate and 0 from one step to the next."""
    scheduler = cfg.task.get("scheduler")
    spans_the_run = scheduler is not None and "trainer.max_steps" in OmegaConf.to_yaml(scheduler)  # not resolved
    if spans_the_run and cfg.trainer.max_steps < 1:
        raise ConfigError(
            f"task.scheduler spans trainer.max_steps, which is {cfg.trainer.max_steps}; set trainer.max_steps=<steps>"
        )


def train(cfg: DictConfig) -> dict[str, float]:
    """Run ``trainer.fit`` for the composed config; return the final logged metrics."""
    cfg = with_trainer_precision(cfg)
    check_types(cfg)
    check_schedule_length(cfg)
    flush_denormals()
    set_numerics(bool(cfg.trainer.get("deterministic", False)))
    pl.seed_everything(cfg.seed, workers=True)
    trust = bool(cfg.get("trust_checkpoint", False))
    ckpt_path = checkpoint_path(cfg.get("ckpt_path"), trust)
    datamodule = instantiate(cfg.data)
    net = initial_net(cfg, trust)
    criterion = build_criterion(cfg.loss, cfg.loss_net)
    # The run config goes in as YAML text: instantiate would build the _target_ nodes of a dict.
    task = instantiate(cfg.task, net=net, criterion=criterion, run_config=OmegaConf.to_yaml(cfg, resolve=True))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks.append(RandomState())  # not a config choice: resuming must not change the result
    callbacks.append(DivergenceGuard())  # nor is keeping NaN weights
    callbacks.append(ProcessGroupTeardown())  # nor is a clean exit of data-parallel processes
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    strategy = ddp_strategy(cfg.trainer.get("strategy", "auto"), task)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()], strategy=strategy
    )
    warn_if_emulated(str(trainer.precision), trainer.strategy.root_device)
    log_hparams(loggers, cfg)
    if criterion.loss_net is not None:
        log_loss_network_note(criterion.loss_net.source, loggers, Path(cfg.paths.output_dir))
    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not trust)
    save_final_checkpoint(trainer)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    log_hparams_summary(loggers, cfg, metrics, step=max(trainer.global_step - 1, 0))  # Lightning's last logged step
    log.info("finished at step %d: %s", trainer.global_step, metrics)
    if task.skipped_images:
        log.warning("%d unreadable training image(s) were skipped; the warnings above name them", task.skipped_images)
    return metrics
