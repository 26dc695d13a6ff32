"""The one criterion builder: the loss terms of ``loss.terms`` and a loss network built from ``loss_net``, shared by
training, the optimisation baseline and the layer reconstructions."""

from __future__ import annotations

from collections.abc import Iterable

from hydra.utils import instantiate
from omegaconf import DictConfig

from perceptual.errors import ConfigError
from perceptual.losses.criterion import PerceptualCriterion
from perceptual.lossnet.vgg import LossNetwork


def build_loss_network(loss_net: DictConfig, layers: Iterable[str]) -> LossNetwork:
    """The loss network of a ``loss_net`` config (``conf/loss_net/*.yaml``: arch, weights, seed, pooling, ...) for
    ``layers``; every key of the config reaches :class:`LossNetwork`."""
    if "_target_" not in loss_net:
        raise ConfigError("loss_net has no _target_; choose loss_net=vgg16|vgg19 and override its keys")
    return instantiate(loss_net, layers=list(layers), _partial_=False)


def build_criterion(loss: DictConfig, loss_net: DictConfig) -> PerceptualCriterion:
    """The criterion of ``loss.terms`` with a loss network truncated to the layers they use."""
    terms = loss.get("terms")
    if not terms:
        raise ConfigError("loss.terms is empty; choose loss=style|perceptual|pixel|... or add terms")
    for name, term in terms.items():
        if term is not None and "_target_" not in term:
            raise ConfigError(
                f"loss.terms.{name} has no _target_; give the term's class, e.g. perceptual.losses.FeatureLoss"
            )
    return PerceptualCriterion(
        {name: instantiate(term) for name, term in terms.items()},
        loss_net=lambda layers: build_loss_network(loss_net, layers),
    )
