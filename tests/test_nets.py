from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from perceptual.errors import ConfigError
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.base import Capabilities, TransformNet
from perceptual.nets.blocks import OutputActivation
from perceptual.nets.stylebank import StyleBankNet


@pytest.mark.parametrize("padding", ["paper", "same"])
@pytest.mark.parametrize("upsample", ["transpose", "nearest", "bilinear"])
def test_style_net_keeps_any_size(padding: str, upsample: str) -> None:
    net = StyleTransferNet(width=8, padding=padding, upsample=upsample, norm="instance").eval()
    for size in [(32, 32), (17, 23), (45, 64), (64, 45)]:
        out = net(torch.rand(2, 3, *size))
        assert out.shape == (2, 3, *size)


def test_style_net_paper_layout() -> None:
    net = StyleTransferNet()
    assert net.context == 40  # reflection padding 40 for 5 unpadded residual blocks
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(1.68e6, rel=0.01)


@pytest.mark.parametrize(("scale", "size"), [(2, 144), (4, 72), (8, 36)])
def test_sr_net_maps_to_288(scale: int, size: int) -> None:
    net = SuperResolutionNet(scale=scale, width=16).eval()
    assert net(torch.rand(1, 3, size, size)).shape == (1, 3, 288, 288)
    assert net(torch.rand(1, 3, 7, 5)).shape == (1, 3, 7 * scale, 5 * scale)


def test_sr_net_paper_padding_keeps_size() -> None:
    net = SuperResolutionNet(scale=4, width=8, padding="paper").eval()
    assert net(torch.rand(1, 3, 13, 9)).shape == (1, 3, 52, 36)


def activation_input(net: StyleTransferNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The net's output and what its :class:`OutputActivation` received."""
    seen = []
    [activation] = [m for m in net.modules() if isinstance(m, OutputActivation)]
    handle = activation.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    out = net(x)
    handle.remove()
    return out, seen[0]


@torch.no_grad()
def test_output_modes() -> None:
    """tanh: the paper's scaled tanh; clamp: linear while training, clamped to [0, 1] in eval mode."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    tanh = StyleTransferNet(width=8).eval()
    out, pre = activation_input(tanh, x)
    torch.testing.assert_close(out, 0.5 * (torch.tanh(pre) + 1))
    clamp = StyleTransferNet(width=8, output="clamp")
    last_conv = [m for m in clamp.modules() if isinstance(m, nn.Conv2d)][-1]
    last_conv.bias.copy_(torch.tensor([-2.0, 0.5, 2.0]))  # push channels below, inside and above [0, 1]
    out, pre = activation_input(clamp.train(), x)
    assert torch.equal(out, pre) and pre.min() < 0 and pre.max() > 1
    out, pre = activation_input(clamp.eval(), x)
    assert torch.equal(out, pre.clamp(0, 1)) and not torch.equal(out, pre)
    with pytest.raises(ConfigError, match="use one of: tanh, clamp"):
        StyleTransferNet(output="sigmoid")


def test_invalid_scale_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scale=3 is not supported; use one of: 2, 4, 8"):
        SuperResolutionNet(scale=3)


@pytest.mark.parametrize("padding", ["same", "paper"])
def test_bicubic_skip_starts_as_bicubic_and_learns_a_residual(padding: str) -> None:
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=4, width=8, padding=padding, output="clamp", skip="bicubic")
    stripes = 0.2 * torch.sign(torch.sin(torch.arange(44) * 1.3))  # detail bicubic cannot restore
    hr = (F.interpolate(torch.rand(2, 3, 6, 7), size=(36, 44), mode="bilinear") + stripes).clamp(0, 1)
    lr = F.avg_pool2d(hr, 4)
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(net.eval()(lr), bicubic.clamp(0, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    losses = []
    for _ in range(20):
        loss = (net(lr) - hr).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bicubic_skip_needs_clamp_output() -> None:
    with pytest.raises(ConfigError, match=r"skip=bicubic .* set output=clamp"):
        SuperResolutionNet(scale=4, skip="bicubic")


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (StyleTransferNet(width=4, n_residual=1, norm="instance"), Capabilities(4, 1, 0, False, "instance", True)),
        (SuperResolutionNet(scale=8, width=4, n_residual=1), Capabilities(1, 8, 0, False, "batch", False)),
        (SuperResolutionNet(scale=2, width=4, norm="none"), Capabilities(1, 2, 0, False, "none", False)),
        (StyleBankNet(num_styles=3, width=4, norm="batch"), Capabilities(4, 1, 3, True, "batch", True)),
    ],
    ids=["style", "sr x8", "sr x2", "stylebank"],
)
def test_every_net_kind_declares_its_capabilities(net: TransformNet, expected: Capabilities) -> None:
    assert net.capabilities == expected
    x = torch.rand(1, 3, 10, 14)  # not a multiple of the stride: padded, then cropped back
    kwargs = {"style_index": expected.banks - 1} if expected.banks else {}
    assert net.eval()(x, **kwargs).shape[-2:] == (10 * expected.scale, 14 * expected.scale)


def test_config_is_recorded_from_the_constructor_signature() -> None:
    class Wider(StyleTransferNet):
        def __init__(self, extra: int = 7, **kwargs: int) -> None:
            super().__init__(width=2 * kwargs.pop("width", 4), **kwargs)

    assert StyleTransferNet(8, norm="instance").config() == {
        "_target_": "perceptual.nets.johnson.StyleTransferNet",
        **dict(width=8, n_residual=5, norm="instance", upsample="transpose", padding="paper", output="tanh"),
    }
    net = Wider(width=3, n_residual=1)  # the built class's arguments, not those it passes to its base
    assert net.options == {"extra": 7, "width": 3, "n_residual": 1}  # **kwargs flattened: instantiate rebuilds it
    assert net.body[0][1].out_channels == 6
    bank = StyleBankNet(num_styles=1, width=4)
    bank.add_banks(2)
    assert bank.config()["num_styles"] == 3  # banks added since construction count
    rebuilt = instantiate(bank.config())
    assert rebuilt.capabilities == bank.capabilities
