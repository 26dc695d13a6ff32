"""task.compile: the compiled training step gives the eager step's losses and weights, its checkpoints keep clean keys
and load for inference and resuming, and the combinations that cannot work are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import train_run
from perceptual.checkpoints import read_checkpoint
from perceptual.errors import ConfigError
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.inference.runner import Runner, load_net
from perceptual.losses.criterion import LossOutput
from perceptual.nets import StyleTransferNet
from perceptual.tasks.compile import CompiledLosses, compile_mode

# A tiny SR net with a VGG feature loss: the whole step (net, frozen loss network, terms) compiles in about a minute.
# No normalisation layers: a bias before batch norm has no gradient but rounding noise, which Adam turns into steps of
# +-lr whose sign differs between any two kernels; every other weight would agree as well as these do.
RUN = ("debug=fast", "task=sr", "loss=perceptual", "model.norm=none", "trainer.precision=32-true")


@pytest.mark.slow
def test_compiled_step_matches_eager_and_its_checkpoints_resume_and_load(tmp_path: Path) -> None:
    eager = train_run(tmp_path / "eager", *RUN, "trainer.max_steps=4")
    train_run(tmp_path / "compiled", *RUN, "trainer.max_steps=2", "task.compile=true")
    checkpoint = tmp_path / "compiled" / "checkpoints" / "last.ckpt"
    state = read_checkpoint(checkpoint)["state_dict"]
    assert state and not [key for key in state if "_orig_mod" in key]
    net, _ = load_net(checkpoint)  # what stylize.py and evaluate.py load
    assert Runner(net, "cpu")(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8 * net.scale, 8 * net.scale)

    resumed = train_run(
        tmp_path / "compiled", *RUN, "trainer.max_steps=4", "task.compile=true", f"ckpt_path={checkpoint}"
    )
    assert resumed["train/loss"] == pytest.approx(eager["train/loss"], rel=1e-4)
    expected = read_checkpoint(tmp_path / "eager" / "checkpoints" / "last.ckpt")["state_dict"]
    actual = read_checkpoint(checkpoint)["state_dict"]
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=1e-4, atol=1e-6)


def test_compile_values_and_impossible_combinations_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (compile_mode(False), compile_mode(True), compile_mode("max-autotune")) == (None, "default", "max-autotune")
    with pytest.raises(ConfigError, match=r"task.compile=fast is not supported; use one of: true, false, default"):
        compile_mode("fast")
    with pytest.raises(ConfigError, match=r"task.compile=reduce-overhead records CUDA graphs, which need a CUDA"):
        CompiledLosses(nn.Identity(), print, "reduce-overhead", torch.device("cpu"))

    # CUDA graphs replay one shape: a batch of another is refused (compiling itself is left out here).
    monkeypatch.setattr(torch, "compile", lambda losses, **options: losses)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: None)
    losses = CompiledLosses(
        nn.Identity(), lambda x, target: LossOutput(x.sum(), {"sum": x.sum()}), "reduce-overhead", torch.device("cuda")
    )
    losses(torch.ones(2, 3, 8, 8), torch.ones(2, 3, 8, 8))
    with pytest.raises(
        ConfigError, match=r"batches of \(2, 3, 8, 8\), but a batch of \(1, 3, 8, 8\) came.*task.compile=true"
    ):
        losses(torch.ones(1, 3, 8, 8), torch.ones(1, 3, 8, 8))


def test_compiling_with_tiles_is_refused_in_one_line() -> None:
    net = StyleTransferNet(width=2, n_residual=1)
    with pytest.raises(ConfigError, match=r"compile=true recompiles for every tile shape.*drop compile or tile"):
        build_pipeline(net, PipelineOptions(device="cpu", compile=True, tile=128))
