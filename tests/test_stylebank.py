"""StyleBank: the net, the (T+1)-step schedule, incremental learning, fusion, and the train and stylize commands."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from conftest import run_command, train_run
from perceptual.checkpoints import CheckpointMetadata, read_checkpoint, slim_checkpoint
from perceptual.data.images import collate_skipping
from perceptual.errors import ConfigError, DataError
from perceptual.imaging.color import quantize
from perceptual.imaging.io import load_image
from perceptual.inference.fusion import StyleBankFusion, feature_weights, with_fusion
from perceptual.inference.runner import load_net
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, TotalVariationLoss
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets.johnson import StyleTransferNet
from perceptual.nets.stylebank import StyleBankNet
from perceptual.tasks.stylebank import StyleBankTask

STYLES = ["mosaic", "colorwheel"]
SIZE = 32


def _net(num_styles: int = 3, **options) -> StyleBankNet:
    torch.manual_seed(0)
    return StyleBankNet(num_styles, width=8, **options)


def _criterion() -> PerceptualCriterion:
    """The StyleBank loss's terms on shallow layers of a random VGG: the schedule is under test, not the layers."""
    terms = {
        "content": FeatureLoss(1.0, layers=["relu2_2"]),
        "style": GramStyleLoss(10.0, layers=["relu1_2", "relu2_2"]),
        "tv": TotalVariationLoss(1e-6),
    }
    return PerceptualCriterion(terms, loss_net=lambda layers: LossNetwork(layers, weights="random"))


def _task(net: StyleBankNet, styles: list[str] = STYLES, **options) -> StyleBankTask:
    return StyleBankTask(
        styles=styles,
        style_size=SIZE,
        net=net,
        criterion=_criterion(),
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
        **options,
    )


def _loader(style_indices: list[list[int]]) -> DataLoader:
    """One batch per entry, with exactly those style indices (so some banks sit out some steps)."""
    generator = torch.Generator().manual_seed(0)
    samples = [
        {"image": torch.rand(3, SIZE, SIZE, generator=generator), "style_index": torch.tensor(i)}
        for batch in style_indices
        for i in batch
    ]
    return DataLoader(samples, batch_size=len(style_indices[0]), collate_fn=collate_skipping)


def _fit(task: StyleBankTask, loader: DataLoader, *callbacks: pl.Callback) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=len(loader),
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    trainer.fit(task, train_dataloaders=loader)
    return trainer


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys, prefix
    return all(torch.equal(a[k], b[k]) for k in keys)


# --- the net -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"bank_depth": 2, "upsample": "nearest", "output": "clamp"}])
def test_shapes_for_any_size(options: dict) -> None:
    net = _net(**options).eval()
    x = torch.rand(2, 3, 29, 42)
    for kwargs in ({}, {"style_index": 1}, {"style_index": torch.tensor([2, 0])}, {"weights": torch.rand(1, 3, 8, 11)}):
        assert net(x, **kwargs).shape == x.shape
    assert net.feature_size(29, 42) == (8, 11)
    assert net.config()["num_styles"] == 3 and net.add_banks(2) == [3, 4] and net.num_styles == 5
    depth = options.get("bank_depth", 1)  # convs of 32 x 32 x 3 x 3 + bias; instance-norm scale and shift between them
    assert sum(p.numel() for p in net.banks[0].parameters()) == depth * (32 * 32 * 9 + 32) + (depth - 1) * 2 * 32


def test_per_sample_banks_match_one_by_one() -> None:
    net = _net().eval()
    x, index = torch.rand(4, 3, 20, 24), torch.tensor([2, 0, 2, 1])
    one_by_one = torch.cat([net(x[i : i + 1], style_index=int(index[i])) for i in range(4)])
    torch.testing.assert_close(net(x, style_index=index), one_by_one, rtol=1e-5, atol=1e-6)


def test_one_hot_fusion_reproduces_a_single_style_exactly() -> None:
    net = _net().eval()
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        for style in range(3):
            assert torch.equal(net(x, weights=StyleBankFusion(net, bank=style)(x)), net(x, style_index=style))
            one_hot = StyleBankFusion(net, banks=[style, (style + 1) % 3], weights=[1.0, 0.0])(x)
            assert torch.equal(net(x, weights=one_hot), net(x, style_index=style))


def test_linear_fusion_equals_mixing_the_bank_kernels() -> None:
    """For single-conv banks, sum_i w_i K_i(F) == (sum_i w_i K_i) * F: one conv with the mixed kernel."""
    net = _net().eval()
    x, w = torch.rand(2, 3, 24, 28), [0.2, 0.5, 0.3]
    convs = [bank[0][1] for bank in net.banks]
    mixed = nn.Conv2d(net.channels, net.channels, 3)
    with torch.no_grad():
        mixed.weight.copy_(sum(wi * c.weight for wi, c in zip(w, convs)))
        mixed.bias.copy_(sum(wi * c.bias for wi, c in zip(w, convs)))
        features = net.encoder(x)
        styled = mixed(nn.functional.pad(features, (1, 1, 1, 1), mode="reflect"))
        fused = net(x, weights=StyleBankFusion(net, banks=[0, 1, 2], weights=w)(x))
        torch.testing.assert_close(fused, net.decoder(styled), rtol=1e-4, atol=1e-5)


def _write_masks(folder: Path, height: int, width: int) -> None:
    folder.mkdir()
    left = np.zeros((height, width), np.uint8)
    left[:, : width // 3] = 255
    Image.fromarray(left).save(folder / "a_left.png")
    Image.fromarray(255 - left).save(folder / "b_rest.png")


def test_masks_partition_the_image(tmp_path: Path) -> None:
    net = _net()
    _write_masks(tmp_path / "masks", 40, 60)
    images = torch.rand(2, 3, 30, 45)
    images[1, :, :15] *= 0.2  # a dark half: k-means has something to find
    by_masks = StyleBankFusion(net, banks=[2, 0], masks=tmp_path / "masks")
    for fusion in (by_masks, StyleBankFusion(net, banks=[0, 1, 2], regions="kmeans")):
        masks = fusion.region_masks(images)
        assert masks.shape == (2, len(fusion.banks), 30, 45)
        assert set(masks.unique().tolist()) <= {0.0, 1.0} and torch.equal(masks.sum(dim=1), torch.ones(2, 30, 45))
        cells = feature_weights(masks, net.downsample)
        assert cells.shape[-2:] == net.feature_size(30, 45) and cells.min() >= 0
        torch.testing.assert_close(cells.sum(dim=1), torch.ones(2, *net.feature_size(30, 45)))
        weights = fusion(images)
        assert weights.shape == (2, 3, 8, 12)
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 8, 12))
    masked = by_masks.region_masks(images)
    assert masked[0, 0, :, :14].eq(1).all() and masked[0, 1, :, 16:].eq(1).all()  # a_left.png -> style 2 on the left
    halves = torch.full((1, 3, 30, 45), 0.9)
    halves[..., :20] = 0.1
    regions = StyleBankFusion(net, banks=[1, 2], regions="kmeans").region_masks(halves)
    assert regions[0, 0, :, :20].eq(1).all() and regions[0, 1, :, 20:].eq(1).all()  # the darker region -> styles[0]


@pytest.mark.parametrize(
    "options",
    [
        {"banks": [0, 1], "weights": [0.5, 0.6]},
        {"banks": [0, 1], "weights": [1.0]},
        {"bank": 3},
        {"bank": 0, "banks": [1]},
        {"weights": [1.0]},
        {"banks": [0, 1], "regions": "watershed"},
        {"banks": [0, 1], "regions": "kmeans", "k": 3},
    ],
)
def test_fusion_rejects_bad_options(options: dict) -> None:
    with pytest.raises(ConfigError):
        StyleBankFusion(_net(), **options)


def test_fusion_options_are_for_stylebank_only() -> None:
    apply = object()
    assert with_fusion(apply, StyleTransferNet(width=4, n_residual=1), {"bank": None}) is apply
    with pytest.raises(ConfigError, match="bank="):
        with_fusion(apply, StyleTransferNet(width=4, n_residual=1), {"bank": 1})


# --- training --------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    changed: set[str]  # "encoder", "decoder", "bank0", ...
    styles: set[int]
    autoencoder_grad_norm: float
    stylise_grad_norm: float


class RecordSteps(pl.Callback):
    """What each optimiser step changed, judged from the weights, and the E/D gradient norm it used."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def on_train_batch_start(self, trainer: pl.Trainer, task: StyleBankTask, batch: dict, batch_idx: int) -> None:
        self.before = _state(task.net)

    def on_train_batch_end(self, trainer: pl.Trainer, task: StyleBankTask, outputs, batch: dict, index: int) -> None:
        after = _state(task.net)
        parts = {"encoder": "encoder.", "decoder": "decoder."}
        parts |= {f"bank{i}": f"banks.{i}." for i in range(task.net.num_styles)}
        changed = {part for part, prefix in parts.items() if not _same(self.before, after, prefix)}
        grads = [p.grad for p in task.net.autoencoder_parameters() if p.grad is not None]
        norm = float(torch.nn.utils.get_total_norm(grads))
        self.steps.append(Step(changed, set(batch["style_index"].tolist()), norm, float(task.stylise_grad_norm)))


def test_joint_schedule_banks_and_gradient_rescaling() -> None:
    """T=2: 6 steps = 4 stylising + 2 auto-encoder steps; the auto-encoder steps leave every bank
    bit-identical while E and D move; stylising steps move only the banks of the batch (Adam's momentum
    must not move the others), and the auto-encoder E/D gradient has lambda x the stylising norm."""
    recorder = RecordSteps()
    batches = [[0, 1], [1, 1], [0, 0], [0, 0], [1, 1], [1, 0]]
    _fit(_task(_net(2), identity_grad_scale=0.5), _loader(batches), recorder)
    autoencoder_steps = [i for i, step in enumerate(recorder.steps) if step.changed == {"encoder", "decoder"}]
    assert autoencoder_steps == [2, 5]
    for i, step in enumerate(recorder.steps):
        assert {"encoder", "decoder"} <= step.changed
        if i in autoencoder_steps:
            expected = 0.5 * recorder.steps[i - 1].autoencoder_grad_norm  # lambda = 0.5 x the last stylising step
            assert step.autoencoder_grad_norm == pytest.approx(expected, rel=1e-4)
        else:
            assert step.changed - {"encoder", "decoder"} == {f"bank{s}" for s in step.styles}
            assert step.stylise_grad_norm == pytest.approx(step.autoencoder_grad_norm, rel=1e-6)


def test_incremental_training_freezes_encoder_decoder_and_old_banks(tmp_path: Path) -> None:
    trained = _net(2)
    checkpoint = tmp_path / "trained.ckpt"
    metadata = CheckpointMetadata(net=trained.config(), task="stylebank", styles=STYLES)
    torch.save(slim_checkpoint(metadata, trained.state_dict()), checkpoint)
    task = _task(_net(0), styles=["astronaut"], incremental=True, init_ckpt=str(checkpoint))
    recorder = RecordSteps()
    trainer = _fit(task, _loader([[0, 0]] * 3), recorder)
    assert [step.changed for step in recorder.steps] == [{"bank2"}] * 3  # stylising steps only, new bank only
    before, after = _state(trained), _state(task.net)
    for prefix in ("encoder.", "decoder.", "banks.0.", "banks.1."):
        assert _same(before, after, prefix), prefix
    optimised = trainer.optimizers[0].param_groups[0]["params"]
    assert [p.shape for p in optimised] == [p.shape for p in task.net.banks[2].parameters()]
    trainer.save_checkpoint(tmp_path / "incremental.ckpt")
    net, saved = load_net(tmp_path / "incremental.ckpt")
    assert net.num_styles == 3 and saved.styles == [*STYLES, "astronaut"]
    assert _same(after, net.state_dict(), "banks.2.")
    with pytest.raises(DataError, match="init_ckpt"):
        _task(_net(0), incremental=True)


def test_bad_training_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="stylise_steps"):
        _task(_net(0), stylise_steps=0)
    with pytest.raises(ConfigError, match="num_styles"):
        _task(_net(3))


# --- the commands ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A joint run (3 banks) and an incremental run adding one bank, as src/train.py runs them."""
    joint, incremental = tmp_path_factory.mktemp("stylebank"), tmp_path_factory.mktemp("stylebank_incremental")
    train_run(joint, "task=stylebank", "debug=fast", "task.style_size=64")
    init_ckpt = joint / "checkpoints" / "last.ckpt"
    train_run(incremental, "task=stylebank_incremental", "debug=fast", "task.style_size=64", f"init_ckpt={init_ckpt}")
    return joint, incremental


def test_training_writes_checkpoints_and_samples(trained_runs: tuple[Path, Path]) -> None:
    joint, incremental = trained_runs
    assert (joint / "samples" / "reconstructed_latest.png").is_file()
    net, metadata = load_net(joint / "checkpoints" / "last.ckpt")
    assert net.num_styles == 3 and metadata.styles == ["mosaic", "immunohistochemistry", "hubble_deep_field"]
    assert read_checkpoint(joint / "checkpoints" / "last.ckpt")["global_step"] == 4
    new_net, new_metadata = load_net(incremental / "checkpoints" / "last.ckpt")
    assert new_net.num_styles == 4 and new_metadata.styles == [*metadata.styles, "colorwheel"]
    old, new = net.state_dict(), new_net.state_dict()
    assert all(torch.equal(value, new[key]) for key, value in old.items())  # E, D and banks 0..2 bit-identical


def test_stylize_fusion_modes(trained_runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, incremental = trained_runs
    Image.fromarray((np.random.default_rng(0).random((36, 44, 3)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    _write_masks(tmp_path / "masks", 36, 44)
    modes = {
        "single": ["bank=3"],
        "linear": ["banks=[0,3]", "weights=[0.25,0.75]", "strength=0.5"],
        "masks": ["banks=[1,3]", f"masks={tmp_path / 'masks'}"],
        "kmeans": ["banks=[0,1,2]", "regions=kmeans", "k=3"],
    }
    ckpt = incremental / "checkpoints" / "last.ckpt"
    outputs = {}
    for mode, options in modes.items():
        overrides = (f"ckpt={ckpt}", f"input={tmp_path}/in.png", f"output={tmp_path}/{mode}.png", "device=cpu")
        overrides += ("precision=fp32",)  # as the reference below: precision=auto may pick bf16
        assert run_command("stylize.py", *overrides, *options) == 0, mode
        outputs[mode] = np.asarray(Image.open(tmp_path / f"{mode}.png")).astype(int)
        assert outputs[mode].shape == (36, 44, 3)
    net, _ = load_net(ckpt)
    with torch.no_grad():
        bank3 = net(load_image(tmp_path / "in.png")[None], style_index=3)[0]
    assert np.abs(outputs["single"] - quantize(bank3).mul(255).permute(1, 2, 0).numpy()).max() <= 1
    for first, second in itertools.combinations(modes, 2):
        assert not np.array_equal(outputs[first], outputs[second]), (first, second)
