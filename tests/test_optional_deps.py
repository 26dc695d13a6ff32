"""The base install (no ``video``, ``export`` or ``demo`` extra, no matplotlib) stylises, upscales and evaluates images;
a video input or the web demo is one line naming the extra to install."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from conftest import REPO, compose_config, error_lines, save_net, write_images
from perceptual.nets.johnson import StyleTransferNet, SuperResolutionNet

OPTIONAL = ("av", "cv2", "onnx", "onnxscript", "onnxruntime", "matplotlib", "gradio")


@pytest.fixture
def base_install() -> Iterator[Callable[[str, DictConfig], int]]:
    """Commands run as on a machine without :data:`OPTIONAL`: those modules (and their submodules) cannot be imported,
    and every ``perceptual`` module is imported afresh under that rule. ``sys.modules`` is restored afterwards."""
    saved = dict(sys.modules)
    for name in list(sys.modules):
        if name.partition(".")[0] in (*OPTIONAL, "perceptual"):
            del sys.modules[name]
    for name in OPTIONAL:
        sys.modules[name] = None  # type: ignore[assignment]  # 'import name' raises ImportError

    def run(script: str, cfg: DictConfig) -> int:
        spec = importlib.util.spec_from_file_location(f"base_install_{Path(script).stem}", REPO / "src" / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            module.main(cfg)
        except SystemExit as exit:
            return exit.code or 0
        return 0

    try:
        yield run
    finally:
        sys.modules.clear()
        sys.modules.update(saved)


def test_image_commands_run_without_optional_packages(
    base_install: Callable[[str, DictConfig], int], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    style = save_net(tmp_path / "style.ckpt", StyleTransferNet(width=4, n_residual=1, norm="instance"))
    sr = save_net(tmp_path / "sr.ckpt", SuperResolutionNet(scale=2, width=4, n_residual=1), task="sr")
    images = write_images(tmp_path / "photos", 2, size=(24, 28))
    stylize = compose_config("stylize", f"ckpt={style}", f"input={images[0].parent}", f"output={tmp_path}/styled")
    assert base_install("stylize.py", stylize) == 0
    assert sorted(path.name for path in (tmp_path / "styled").iterdir()) == [path.name for path in images]
    evaluate = compose_config(
        "evaluate", f"ckpt={sr}", f"input={images[0].parent}", "scale=2", output_dir=tmp_path / "evaluation"
    )
    assert base_install("evaluate.py", evaluate) == 0
    assert (tmp_path / "evaluation" / "results.json").is_file()
    assert not any(name in sys.modules and sys.modules[name] is not None for name in OPTIONAL)
    capsys.readouterr()

    video = compose_config("stylize", f"ckpt={style}", f"input={tmp_path}/clip.mp4", f"output={tmp_path}/out.mp4")
    assert base_install("stylize.py", video) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert error_lines(stderr) == [
        "error: video input and output needs the av package, which is not installed: pip install 'perceptual[video]'"
    ]


def test_demo_without_gradio_names_the_extra(base_install: Callable[[str, DictConfig], int], capsys) -> None:
    assert base_install("demo.py", compose_config("demo", "device=cpu")) == 2
    assert error_lines(capsys.readouterr().err) == [
        "error: the web demo needs the gradio package, which is not installed: pip install 'perceptual[demo]'"
    ]
