"""The style task's shift term (``task.shift_consistency``): what it measures, that training lowers it, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from conftest import train_run
from perceptual.errors import ConfigError
from perceptual.losses import FeatureLoss, PerceptualCriterion
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet
from perceptual.nets.base import Capabilities, TransformNet
from perceptual.tasks.style import SHIFT_MARGIN, StyleTransferTask


class LatticeNet(TransformNet):
    """The photo plus horizontal lines every 4th row of the output: a texture locked to the output grid."""

    def __init__(self, strength: float = 0.0) -> None:
        super().__init__()
        self.strength = strength

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(stride=4)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.strength * lines(x.shape[-2]).view(-1, 1)


def lines(height: int) -> Tensor:
    return (torch.arange(height) % 4 == 0).float()


def task_for(net: TransformNet, shift_consistency: float = 1.0) -> StyleTransferTask:
    criterion = PerceptualCriterion({"content": FeatureLoss(1.0, ["relu1_2"])}, loss_net=LossNetwork(["relu1_2"]))
    return StyleTransferTask(
        style="mosaic",
        style_size=16,
        net=net,
        criterion=criterion,
        optimizer=torch.optim.Adam,
        shift_consistency=shift_consistency,
    )


@pytest.mark.parametrize("strength", [0.0, 0.5])
def test_the_term_is_the_lattices_change_under_each_offset_and_blind_to_the_photo(strength: float) -> None:
    """For output = photo + L(row), the crops' outputs differ by L(row + dy) - L(row) where they overlap: the photo
    cancels (it moves with the crop), so a misaligned comparison would show, and a texture locked to the grid costs
    its change under the offset."""
    task = task_for(LatticeNet(strength))
    photos = torch.rand(2, 3, 160, 168, generator=torch.Generator().manual_seed(0))
    height = 160 // 2 // 4 * 4
    lattice = lines(height)
    for dy, dx in task.shift_offsets:
        rows = torch.arange(SHIFT_MARGIN, height - dy - SHIFT_MARGIN)
        expected = (strength * (lattice[rows + dy] - lattice[rows])).square().mean()
        difference = task.shift_difference(photos, (dy, dx))
        assert difference.item() == pytest.approx(expected.item(), abs=1e-6), (dy, dx)


def test_each_offset_within_a_stride_cell_but_zero_is_used_in_turn() -> None:
    offsets = task_for(LatticeNet()).shift_offsets
    assert len(offsets) == len(set(offsets)) == 15
    assert all(0 <= dy < 4 and 0 <= dx < 4 and (dy, dx) != (0, 0) for dy, dx in offsets)


def test_training_on_the_term_makes_a_net_move_with_the_photo() -> None:
    """A freshly initialised style net paints other pixels for a shifted photo; Adam on the term alone lowers that."""
    torch.manual_seed(0)
    net = StyleTransferNet(width=4, n_residual=1, norm="instance", upsample="nearest")
    task = task_for(net)
    photos = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    values = []
    for _ in range(30):
        optimizer.zero_grad()
        difference = task.shift_difference(photos, (1, 2))
        difference.backward()
        optimizer.step()
        values.append(difference.item())
    assert values[-1] < 0.5 * values[0], values


def test_a_run_logs_the_term_beside_the_criterions(tmp_path: Path) -> None:
    overrides = ("debug=fast", "task.shift_consistency=10", "data.image_size=96", "trainer.max_steps=2")
    metrics = train_run(tmp_path, *overrides)
    assert metrics["train/shift"] > 0


def test_bad_values_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="negative"):
        task_for(LatticeNet(), shift_consistency=-1)
    with pytest.raises(ConfigError, match=r"data\.image_size"):
        task_for(LatticeNet()).shift_difference(torch.rand(1, 3, 64, 64), (1, 1))
