"""StyleBank training (Chen et al., CVPR 2017): joint (T+1)-step schedule and incremental new styles.

Joint training alternates T stylising steps, which update E, D and the banks of the batch's styles
with the perceptual criterion, with one auto-encoder step, which updates E and D only with an
identity loss whose E/D gradient is rescaled to ``lambda`` x the last stylising step's. The
identity branch keeps style out of E and D, so that each style lives in its bank alone.

Incremental training loads a trained StyleBank, appends one bank per new style and trains only
those banks (stylising steps only); E, D and the old banks are frozen and stay bit-identical.

Optimisation is manual (Lightning ``automatic_optimization = False``) so each step picks its
branch and the auto-encoder gradient can be rescaled before the optimiser sees it. Gradients are
cleared to ``None`` every step: optimisers skip parameters without a gradient, so banks absent
from a batch (and all banks on auto-encoder steps) are not moved by Adam's momentum.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from perceptual.data.batch import IMAGE_KEY, STYLE_INDEX_KEY
from perceptual.data.sample import resolve_image
from perceptual.errors import ConfigError, DataError
from perceptual.evaluation.metrics import psnr
from perceptual.inference.runner import load_net
from perceptual.losses.base import LossTerm
from perceptual.losses.criterion import PerceptualCriterion
from perceptual.losses.feature import PixelLoss
from perceptual.nets.stylebank import StyleBankNet
from perceptual.tasks.base import TransformTask

log = logging.getLogger(__name__)


def scale_gradients(parameters: Iterable[nn.Parameter], norm: Tensor, reference: Tensor) -> Tensor:
    """Rescale the gradients of ``parameters`` in place to a joint L2 norm of ``norm``, or leave them as they are
    while ``reference`` (what ``norm`` is a multiple of) is still 0; return the factor. Decided on the device, so the
    host never waits for the norms."""
    grads = [p.grad for p in parameters if p.grad is not None]
    factor = norm / torch.nn.utils.get_total_norm(grads).clamp_min(torch.finfo(norm.dtype).tiny)
    factor = torch.where(reference > 0, factor, torch.ones_like(factor))
    for grad in grads:
        grad.mul_(factor.to(grad.dtype))
    return factor


class StyleBankTask(TransformTask):
    """Train a :class:`StyleBankNet` on content images mixed with the styles of ``styles``.

    Args:
        styles: style images (paths or built-in names); training batches carry a ``style_index``
            into this list (``data.styles``). Incremental mode: the NEW styles only.
        style_size: resize the style images' shorter side (``None`` keeps them).
        stylise_steps: T, stylising steps before each auto-encoder step (paper: 2).
        identity_grad_scale: lambda, the auto-encoder step's E/D gradient norm as a multiple of the
            last stylising step's (paper: 1); ``None`` keeps the identity loss's own gradient.
        identity: the auto-encoder branch's loss term against the input (default: pixel MSE).
        incremental: add banks for ``styles`` to the net of ``init_ckpt`` and train only them.
        init_ckpt: trained StyleBank checkpoint (incremental mode).
        trust_checkpoint: load ``init_ckpt`` with full unpickling (unsafe; only for a file you trust).
        **kwargs: see :class:`TransformTask`; ``criterion`` is the stylising branch's loss.
    """

    task_name = "stylebank"
    unused_parameters = True  # the banks of styles absent from a batch, and every bank on auto-encoder steps

    def __init__(
        self,
        styles: Sequence[str],
        style_size: int | None = 256,
        stylise_steps: int = 2,
        identity_grad_scale: float | None = 1.0,
        identity: LossTerm | None = None,
        incremental: bool = False,
        init_ckpt: str | None = None,
        trust_checkpoint: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.automatic_optimization = False
        if not styles:
            raise ConfigError("data.styles is empty; give the style images, e.g. data.styles='[a.jpg,b.jpg]'")
        if stylise_steps < 1:
            raise ConfigError(f"task.stylise_steps={stylise_steps} must be at least 1 (T in the paper: 2)")
        if self.compile_mode is not None:
            raise ConfigError(
                "task.compile is not supported by StyleBank (its steps alternate two branches and rescale gradients "
                "between them); drop task.compile"
            )
        if identity_grad_scale is not None and identity_grad_scale < 0:
            raise ConfigError(f"task.identity_grad_scale={identity_grad_scale} must be >= 0 or null (lambda: 1)")
        self.styles = list(styles)
        self.style_images = [resolve_image(spec, "style", style_size) for spec in self.styles]
        self.stylise_steps = stylise_steps
        self.identity_grad_scale = identity_grad_scale
        self.identity_criterion = PerceptualCriterion({"identity": identity or PixelLoss()})
        self.incremental = incremental
        self.previous_styles: list[str] = []
        if incremental:
            self.net = self._load_trained(init_ckpt, trust_checkpoint)
        elif not self.net.capabilities.fusion:
            raise ConfigError(f"task=stylebank needs a StyleBankNet (model=stylebank), got {type(self.net).__name__}")
        self.first_bank = self.net.num_styles if incremental else 0  # bank of styles[0]
        missing = self.first_bank + len(self.styles) - self.net.num_styles
        if missing < 0:
            raise ConfigError(f"model.num_styles={self.net.num_styles} exceeds the {len(self.styles)} data.styles")
        self.net.add_banks(missing)
        # The last stylising step's E/D gradient norm: a buffer, so a resumed run rescales its first auto-encoder step.
        self.register_buffer("stylise_grad_norm", torch.zeros(()))

    def _load_trained(self, init_ckpt: str | None, trust: bool = False) -> StyleBankNet:
        """The trained net of ``init_ckpt`` with everything frozen (new banks are added trainable)."""
        if not init_ckpt:
            raise DataError("incremental StyleBank training needs init_ckpt=<stylebank run>/checkpoints/last.ckpt")
        net, metadata = load_net(init_ckpt, trust)
        if not net.capabilities.fusion:
            kind = type(net).__name__
            raise DataError(f"init_ckpt={init_ckpt} holds a {kind}, not a StyleBank net; train task=stylebank first")
        log.info("incremental: %d bank(s) from %s (model.* is ignored)", net.num_styles, init_ckpt)
        self.previous_styles = list(metadata.styles)
        return net.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        """E, D and the old banks in incremental mode (nothing in joint training)."""
        if not self.incremental:
            return []
        return [self.net.encoder, self.net.decoder, *self.net.banks[: self.first_bank]]

    def train(self, mode: bool = True) -> StyleBankTask:
        """Frozen modules stay in eval mode, so nothing in them changes (e.g. batch-norm statistics)."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def is_autoencoder_step(self) -> bool:
        """Every (T+1)-th optimiser step, from the step count, so the schedule survives resuming."""
        return not self.incremental and self.global_step % (self.stylise_steps + 1) == self.stylise_steps

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if not self.count_skipped(batch):
            return
        if batch.get(STYLE_INDEX_KEY) is None:
            raise ConfigError("training batches carry no style_index; set data.styles to the style images")
        content = self.prepare_input(batch[IMAGE_KEY])
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        if self.is_autoencoder_step():
            self._autoencoder_step(content)
        else:
            self._stylise_step(content, batch[STYLE_INDEX_KEY])
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def _stylise_step(self, content: Tensor, style_index: Tensor) -> None:
        output = self.net(content, style_index=style_index + self.first_bank)
        losses = self.criterion(output, target=content, style_index=style_index)
        self.manual_backward(losses.total)
        if not self.incremental:
            self.stylise_grad_norm.copy_(self._autoencoder_grad_norm())
        self.log_losses("train", losses, content.shape[0])

    def _autoencoder_step(self, content: Tensor) -> None:
        output = self.net(content)
        losses = self.identity_criterion(output, target=content)
        self.manual_backward(losses.total)
        if self.identity_grad_scale is not None:
            target = self.identity_grad_scale * self.stylise_grad_norm
            factor = scale_gradients(self.net.autoencoder_parameters(), target, reference=self.stylise_grad_norm)
            self.log("train_ae/grad_scale", factor, on_step=True, batch_size=content.shape[0])
        self.log_losses("train_ae", losses, content.shape[0])
        self._log_psnr("train_ae", output, content, on_step=True)

    def _autoencoder_grad_norm(self) -> Tensor:
        return torch.nn.utils.get_total_norm([p.grad for p in self.net.autoencoder_parameters() if p.grad is not None])

    def _log_psnr(self, stage: str, output: Tensor, content: Tensor, on_step: bool) -> None:
        value = psnr(output.detach().float().clamp(0, 1), content.float(), data_range=1.0).mean()
        options = {"on_step": on_step, "on_epoch": not on_step, "sync_dist": not on_step}
        self.log(f"{stage}/psnr", value, batch_size=content.shape[0], **options)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if IMAGE_KEY not in batch:
            return
        content = self.prepare_input(batch[IMAGE_KEY])
        style_index = torch.arange(content.shape[0], device=content.device) % len(self.styles)
        stylised = self.net(content, style_index=style_index + self.first_bank)
        self.log_losses("val", self.criterion(stylised, target=content, style_index=style_index), content.shape[0])
        images = {"content": content, "stylised": stylised}
        if not self.incremental:  # frozen E and D: the reconstruction cannot change
            reconstructed = self.net(content)
            self.log_losses("val_ae", self.identity_criterion(reconstructed, target=content), content.shape[0])
            self._log_psnr("val_ae", reconstructed, content, on_step=False)
            images["reconstructed"] = reconstructed
        if batch_idx == 0:
            self.keep_validation_images(images)

    def style_names(self) -> list[str]:
        """The style of each bank, in order: those of ``init_ckpt`` first in incremental mode."""
        return self.previous_styles + self.styles
