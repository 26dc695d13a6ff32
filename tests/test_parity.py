"""Objective parity (evaluation.parity and experiments/style_quality/parity.py): tiny criteria, random features."""

from __future__ import annotations

import csv
import itertools
import math
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hydra.utils import instantiate
from torchvision.transforms.v2 import functional as TF

from conftest import compose_config, error_lines, save_net, script_module, train_run, write_images
from perceptual.checkpoints import build_net, read_checkpoint
from perceptual.data.sample import builtin_image
from perceptual.errors import DataError
from perceptual.evaluation.parity import (
    LbfgsCurve,
    equivalent_iterations,
    format_iterations,
    lbfgs_curve,
    machine,
    mean_curve,
    measure,
    rebuild_criterion,
)
from perceptual.imaging.io import save_image
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion, TotalVariationLoss
from perceptual.losses.builder import build_criterion
from perceptual.lossnet.compact import write_compact
from perceptual.lossnet.vgg import LossNetwork

# Not the defaults, so that a criterion rebuilt from defaults instead of the checkpoint would differ.
STYLE_OVERRIDES = (
    "debug=fast",
    "trainer.max_steps=2",
    "style=coffee",
    "task.style_size=40",
    "loss.terms.style.weight=3.5",
    "loss.terms.content.layers=[relu3_3]",
    "loss.terms.tv.weight=1e-3",
    "loss_net.seed=3",
)
STYLEBANK_OVERRIDES = ("task=stylebank", "debug=fast", "trainer.max_steps=2", "data.styles=[mosaic,coffee]")


def tiny_criterion() -> PerceptualCriterion:
    criterion = PerceptualCriterion(
        {
            "content": FeatureLoss(1.0, ["relu2_2"]),
            "style": GramStyleLoss(10.0, ["relu1_2", "relu2_2"]),
            "tv": TotalVariationLoss(1e-4),
        },
        loss_net=LossNetwork(["relu1_2", "relu2_2"], weights="random"),
    )
    criterion.set_styles([builtin_image("mosaic")[:, :40, :40]])
    return criterion


def tiny_photo(size: int = 24) -> torch.Tensor:
    return TF.resize(builtin_image("astronaut"), [size, size], antialias=True)[None]


@pytest.mark.parametrize("init", ["noise", "content"])
def test_lbfgs_curve_is_non_increasing(init: str) -> None:
    curve = lbfgs_curve(tiny_criterion(), tiny_photo(), steps=12, init=init)
    values = [curve.initial, *curve.losses]
    assert len(values) == 13 and all(math.isfinite(v) for v in values)
    assert all(later <= earlier for earlier, later in itertools.pairwise(values)), values
    assert values[-1] < values[0]
    assert curve.at(0) == curve.initial and curve.at(12) == curve.losses[-1]


def test_lbfgs_curve_is_stored_and_reused_only_for_the_same_criterion_and_photo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "curves"
    first = lbfgs_curve(tiny_criterion(), tiny_photo(), steps=5, cache=cache)
    assert not first.cached and len(list(cache.glob("*.pt"))) == 1

    def no_optimisation(*args: object, **kwargs: object) -> None:
        raise AssertionError("L-BFGS ran although a stored curve matches")

    monkeypatch.setattr("perceptual.evaluation.parity.optimize_image", no_optimisation)
    again = lbfgs_curve(tiny_criterion(), tiny_photo(), steps=5, cache=cache)
    assert again.cached and again.losses == first.losses and again.initial == first.initial
    assert torch.equal(again.image, first.image)

    heavier_style = tiny_criterion()
    heavier_style.terms["style"].weight = 20.0
    for criterion, photo, steps, seed in [
        (heavier_style, tiny_photo(), 5, 0),
        (tiny_criterion(), tiny_photo(28), 5, 0),
        (tiny_criterion(), tiny_photo(), 6, 0),
        (tiny_criterion(), tiny_photo(), 5, 1),
    ]:
        with pytest.raises(AssertionError, match="L-BFGS ran"):
            lbfgs_curve(criterion, photo, steps=steps, seed=seed, cache=cache)
    monkeypatch.setattr("perceptual.evaluation.parity.machine", lambda device: "another CPU, torch 2.x")
    with pytest.raises(AssertionError, match="L-BFGS ran"):  # curves differ between machines: never shared
        lbfgs_curve(tiny_criterion(), tiny_photo(), steps=5, cache=cache)


def test_equivalent_iterations_on_constructed_curves() -> None:
    counts, curve = [10, 20, 40], [1e-1, 1e-2, 1e-3]  # from 1 at iteration 0, tenfold down per recorded count

    def reach(target: float, objectives: list[float] = curve) -> float:
        return equivalent_iterations(counts, objectives, target, initial=1.0)

    assert reach(1e-1) == pytest.approx(10) and reach(1e-3) == pytest.approx(40)
    assert reach(10**-0.5) == pytest.approx(5)  # halfway in log-objective from the start to the first count
    assert reach(10**-1.5) == pytest.approx(15)
    assert reach(10**-2.25) == pytest.approx(25)  # a quarter of the way from 20 to 40
    assert reach(2.0) == 0 and reach(1.0) == 0  # worse than (or as good as) the starting image
    assert reach(1e-4) == math.inf and format_iterations(reach(1e-4), counts) == ">40"
    assert reach(0.2, [0.1, 0.3, 1e-3]) == pytest.approx(10 * math.log(5) / math.log(10))  # the first crossing
    assert reach(0.1, [0.1, 0.1, 0.1]) == pytest.approx(10)
    assert format_iterations(12.345, counts) == "12.3"


def test_measure_reports_the_net_objective_and_the_curve_at_each_count() -> None:
    criterion, photo = tiny_criterion(), tiny_photo()
    result = measure(criterion, photo, photo.flip(-1), counts=[4, 2], name="flipped")
    assert list(result.lbfgs) == [2, 4] and len(result.curve) == 4
    assert result.lbfgs[4] == result.curve[3]
    assert result.feed_forward == pytest.approx(criterion(photo.flip(-1), target=photo).total.item())
    assert result.iterations == equivalent_iterations([1, 2, 3, 4], result.curve, result.feed_forward, result.initial)


def test_mean_curve_is_the_geometric_mean_per_iteration() -> None:
    image = torch.zeros(1, 3, 2, 2)
    curves = [LbfgsCurve(4.0, [1.0, 0.5], image), LbfgsCurve(1.0, [0.25, 0.02], image.clone(), cached=True)]
    mean = mean_curve(curves)
    assert mean.initial == pytest.approx(2.0) and mean.losses == pytest.approx([0.5, 0.1])
    assert mean.image is curves[0].image and not mean.cached
    assert mean_curve(curves[1:]).losses == pytest.approx(curves[1].losses) and mean_curve(curves[1:]).cached


def test_measure_averages_the_curves_of_several_noise_starts() -> None:
    criterion, photo = tiny_criterion(), tiny_photo()
    output = photo.flip(-1)
    runs = [lbfgs_curve(criterion, photo, steps=4, seed=seed) for seed in (0, 1)]
    assert runs[0].losses != runs[1].losses  # the starts differ, and so do their curves
    result = measure(criterion, photo, output, counts=[4], seeds=[0, 1])
    assert result.curve == pytest.approx(mean_curve(runs).losses, rel=1e-4)
    every = range(1, 5)
    alone = [equivalent_iterations(every, run.losses, result.feed_forward, run.initial) for run in runs]
    assert result.per_start == pytest.approx(alone, rel=1e-3)
    from_photo = measure(criterion, photo, output, counts=[4], init="content", seeds=[0, 1])
    assert from_photo.curve == measure(criterion, photo, output, counts=[4], init="content").curve
    with pytest.raises(DataError, match="at least one seed"):
        measure(criterion, photo, output, counts=[4], seeds=[])


def training_criterion(output_dir: Path, *overrides: str) -> PerceptualCriterion:
    """The criterion of the task that ``python src/train.py <overrides>`` trains, as train() builds it."""
    cfg = compose_config("train", *overrides, output_dir=output_dir)
    task = instantiate(cfg.task, net=instantiate(cfg.model), criterion=build_criterion(cfg.loss, cfg.loss_net))
    task.cache_styles()
    return task.criterion


def assert_same_objective(a: PerceptualCriterion, b: PerceptualCriterion, output, photo, **kwargs) -> None:
    expected, actual = a(output, target=photo, **kwargs), b(output, target=photo)
    assert actual.terms.keys() == expected.terms.keys()
    for name in expected.terms:
        torch.testing.assert_close(actual.terms[name], expected.terms[name], rtol=1e-5, atol=0, msg=name)


def test_rebuilt_criterion_equals_the_training_criterion(tmp_path: Path) -> None:
    train_run(tmp_path, *STYLE_OVERRIDES)
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    rebuilt = rebuild_criterion(checkpoint)
    photo = tiny_photo(32)
    with torch.no_grad():
        output = build_net(checkpoint)(photo)
    assert_same_objective(training_criterion(tmp_path, *STYLE_OVERRIDES), rebuilt, output, photo)
    default = training_criterion(tmp_path, "debug=fast")  # the check can tell criteria apart
    assert default(output, target=photo).total.item() != pytest.approx(rebuilt(output, target=photo).total.item())


def test_rebuilt_stylebank_criterion_is_the_banks_own(tmp_path: Path) -> None:
    train_run(tmp_path, *STYLEBANK_OVERRIDES)
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    training = training_criterion(tmp_path, *STYLEBANK_OVERRIDES)
    photo = tiny_photo(32)
    output = photo.flip(-1)
    for bank in (0, 1):
        rebuilt = rebuild_criterion(checkpoint, bank=bank)
        assert_same_objective(training, rebuilt, output, photo, style_index=torch.tensor([bank]))
    with pytest.raises(DataError, match=r"bank=2 is out of range: .* has banks 0\.\.1"):
        rebuild_criterion(checkpoint, bank=2)


def test_checkpoints_that_cannot_rebuild_their_criterion_say_what_they_lack(tmp_path: Path, style_run: Path) -> None:
    net = build_net(read_checkpoint(style_run / "checkpoints" / "last.ckpt"))
    bare = read_checkpoint(save_net(tmp_path / "bare.ckpt", net))  # as version 0: no run config, style, loss net
    with pytest.raises(DataError) as error:
        rebuild_criterion(bare, source="bare.ckpt")
    message = str(error.value)
    assert "\n" not in message and message.startswith("bare.ckpt records no run config")
    assert "no style image" in message and "no loss-network weights source" in message
    sr = read_checkpoint(save_net(tmp_path / "sr.ckpt", net, task="sr"))
    with pytest.raises(DataError, match="holds a net of task sr; objective parity compares style nets"):
        rebuild_criterion(sr)
    with pytest.raises(DataError, match="bank=1 only applies to StyleBank"):
        rebuild_criterion(read_checkpoint(style_run / "checkpoints" / "last.ckpt"), bank=1)


def test_rebuilt_criterion_finds_weights_and_style_that_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run trained on an offline machine records paths that do not exist elsewhere: a compact copy of the loss
    network is remade and checked by its SHA-256, any other weights file is asked for, and so is the style image."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    offline = tmp_path / "offline"
    compact = write_compact(offline, "random", layer="relu4_3")
    other = offline / "my_vgg.pth"
    style = offline / "style.png"
    torch.save({key: 1.5 * value for key, value in torch.load(compact).items()}, other)  # weights of its own
    save_image(builtin_image("coffee")[:, :40, :40], style)
    overrides = (*STYLE_OVERRIDES, f"style={style}")
    runs = {}
    for weights in (compact, other):
        run, run_overrides = tmp_path / weights.stem, (*overrides, f"loss_net.weights={weights}")
        train_run(run, *run_overrides)
        runs[weights.name] = read_checkpoint(run / "checkpoints" / "last.ckpt"), training_criterion(run, *run_overrides)
    moved = tmp_path / "moved"
    shutil.copytree(offline, moved)
    shutil.rmtree(offline)

    checkpoint, training = runs[compact.name]
    with pytest.raises(DataError, match=r"trained on the style image .*style\.png, which is not on this machine"):
        rebuild_criterion(checkpoint, source="offline.ckpt")
    rebuilt = rebuild_criterion(checkpoint, style=str(moved / "style.png"))
    assert Path(rebuilt.loss_net.source.file).parent == tmp_path / "torch_home" / "hub" / "checkpoints" / "compact"
    photo = tiny_photo(32)
    with torch.no_grad():
        output = build_net(checkpoint)(photo)
    assert_same_objective(training, rebuilt, output, photo)

    checkpoint, _ = runs[other.name]
    with pytest.raises(DataError, match=r"my_vgg\.pth \(SHA-256 [0-9a-f]{12}\.\.\.\), which is not on this machine"):
        rebuild_criterion(checkpoint, style="coffee", source="offline.ckpt")
    copy = str(moved / other.name)
    assert rebuild_criterion(checkpoint, style="coffee", loss_net_weights=copy).loss_net.source.file == copy
    with pytest.raises(DataError, match="provide the same weights file"):
        rebuild_criterion(checkpoint, style="coffee", loss_net_weights=str(moved / compact.name))


def parity_script() -> ModuleType:
    return script_module("experiments/style_quality/parity.py")


def test_parity_script_ends_with_the_summary_line(
    tmp_path: Path, style_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = write_images(tmp_path / "photos", 2, size=(30, 36))
    out = tmp_path / "out"
    ckpt = str(style_run / "checkpoints" / "last.ckpt")
    args = ["--ckpt", ckpt, "--photos", str(tmp_path / "photos"), "--size", "16", "--iterations", "3,100"]
    args += ["--device", "cpu", "--cache", str(tmp_path / "curves"), "--seeds", "1,0"]
    parity_script().main([*args, "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    parity_script().main([*args, "--out", str(tmp_path / "again")])
    again = capsys.readouterr().out.strip().splitlines()
    assert again[-1] == lines[-1] and sum("(stored curve)" in line for line in again) == len(photos)
    match = re.fullmatch(rf"parity {style_run.name} iterations=(>100|\d+\.\d) ff=(\S+) lbfgs100=(\S+)", lines[-1])
    assert match, lines[-1]
    rows = list(csv.DictReader((out / "parity.csv").read_text().splitlines()))
    assert [row["photo"] for row in rows] == [path.stem for path in photos] + ["median"]
    assert float(match[2]) == pytest.approx(float(rows[-1]["feed_forward"]), rel=1e-3)
    assert float(match[3]) == pytest.approx(float(rows[-1]["lbfgs100"]), rel=1e-3)
    assert match[1] == rows[-1]["iterations"] and rows[0]["init"] == "noise" and rows[0]["seeds"] == "0,1"
    assert "L-BFGS from noise (seeds 0,1: the geometric mean of their curves)" in lines[0]
    assert all(len(row["per_start"].split(";")) == 2 for row in rows)
    assert {row["machine"] for row in rows} == {machine(torch.device("cpu"))} and "torch" in rows[0]["machine"]
    assert any(line.startswith(f"L-BFGS curves on {rows[0]['machine']} ") for line in lines)
    assert (out / "parity.png").is_file() and (out / f"{photos[0].stem}_net.png").is_file()


def test_parity_script_refuses_a_checkpoint_without_a_run_config(
    tmp_path: Path, style_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = build_net(read_checkpoint(style_run / "checkpoints" / "last.ckpt"))
    ckpt = save_net(tmp_path / "old.ckpt", net, styles=("mosaic",))
    with pytest.raises(SystemExit) as exit:
        parity_script().main(["--ckpt", str(ckpt), "--photos", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit.value.code == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "records no run config" in line and "no style image" not in line and "retrain" in line
