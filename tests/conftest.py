"""Shared fixtures: repository paths, configs composed as the commands compose them, entry points run in-process,
a few true command-line runs, small generated images."""

from __future__ import annotations

import functools
import importlib.util
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image

from perceptual.checkpoints import CheckpointMetadata, slim_checkpoint
from perceptual.losses import FeatureLoss, GramStyleLoss, PerceptualCriterion
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet
from perceptual.tasks.style import StyleTransferTask
from perceptual.training import train

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# One CPU thread unless OMP_NUM_THREADS says otherwise: the tests' tensors are tiny, so a second thread gains little,
# and on a busy machine every parallel region waits for a descheduled thread (the debug=fast style net's forward and
# backward pass on two 32 px crops took 5.6 s with two threads, 0.07 s with one). Command-line tests get the same.
THREADS = int(os.environ.get("OMP_NUM_THREADS", 1))
torch.set_num_threads(THREADS)


def compose_config(
    config_name: str, *overrides: str, output_dir: Path | None = None, hydra: bool = False
) -> DictConfig:
    """The config ``conf/<config_name>.yaml`` with ``overrides``, composed as the command composes it (Hydra's compose
    API). ``output_dir`` stands for the run directory Hydra makes for a command (``paths.output_dir``); ``hydra=True``
    keeps Hydra's own settings (``cfg.hydra``)."""
    if output_dir is not None:
        overrides = (*overrides, f"paths.output_dir={output_dir}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=hydra)


def train_run(output_dir: Path, *overrides: str) -> dict[str, float]:
    """``python src/train.py <overrides>`` in this process, writing into ``output_dir``; the final metrics."""
    return train(compose_config("train", *overrides, output_dir=output_dir))


def script_module(path: str) -> ModuleType:
    """The repository's script at ``path`` (``src/train.py``, ``experiments/zoo/pack.py``), imported as a module."""
    spec = importlib.util.spec_from_file_location(f"script_{path.replace('/', '_')[:-3]}", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def entry_point(script: str) -> Callable[[DictConfig], Any]:
    """The Hydra ``main`` of ``src/<script>``."""
    return script_module(f"src/{script}").main


def run_entry_point(script: str, cfg: DictConfig) -> int:
    """Run ``src/<script>`` on a composed config in this process (Hydra's decorator passes a given config straight to
    the function); the exit code the command would give."""
    try:
        entry_point(script)(cfg)
    except SystemExit as exit:
        return exit.code or 0
    return 0


def cli_command(script: str, *overrides: str) -> list[str]:
    """The command line of ``src/<script>``, run from the repository root."""
    return [sys.executable, str(REPO / "src" / script), *overrides]


def cli_env(**variables: str) -> dict[str, str]:
    """The environment entry points run in: this one, quieter, plus ``variables``."""
    quiet = {"PYTHONWARNINGS": "ignore::FutureWarning", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": str(THREADS)}
    return {**os.environ, **quiet, **variables}


def run_cli(script: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``src/<script>`` as a user would, in a new Python process from the repository root (for the few tests of
    what only a real command has: Hydra's run directory, logging to train.log, multirun, exit codes)."""
    return subprocess.run(
        cli_command(script, *overrides), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=cli_env()
    )


def save_net(path: Path, net: torch.nn.Module, task: str = "style", styles: tuple[str, ...] = ()) -> Path:
    """``net`` saved as a checkpoint of the current format (what inference reads), without training it."""
    metadata = CheckpointMetadata(net=net.config(), task=task, styles=list(styles))
    torch.save(slim_checkpoint(metadata, net.state_dict()), path)
    return path


def run_command(script: str, *overrides: str, output_dir: Path | None = None) -> int:
    """``python src/<script> <overrides>`` in this process (its config: ``conf/<script stem>.yaml``, ``output_dir`` as
    in :func:`compose_config`); the exit code."""
    return run_entry_point(script, compose_config(Path(script).stem, *overrides, output_dir=output_dir))


def error_lines(stderr: str) -> list[str]:
    """The one-line errors a command printed (``error: ...``)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark/style/content images beside the repository; tests skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available in this checkout")
    return SHARED_DATA


def write_images(folder: Path, count: int, size: tuple[int, int] = (40, 48), seed: int = 0) -> list[Path]:
    """Smooth random RGB images (gradients + noise) as PNG files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        base = np.stack([xx / size[1], yy / size[0], (xx + yy) / sum(size)], axis=-1) * 200
        image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


# File name -> what is wrong with it; each one is a file an image folder may really hold.
BAD_IMAGES = {
    "bomb.png": "a valid PNG whose header claims 40000x40000 pixels (a decompression bomb)",
    "cut.png": "a PNG cut in half",
    "cut.jpg": "a JPEG cut in half",
    "empty.png": "zero bytes",
    "notes.jpg": "text with an image name",
    "loop.png": "a symbolic link to itself",
    "dangling.png": "a symbolic link to a missing file",
}


def write_bad_images(folder: Path) -> list[Path]:
    """The files of :data:`BAD_IMAGES` in ``folder`` (small: the bomb is 69 bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(folder / "bomb.png")
    png = bytearray((folder / "bomb.png").read_bytes())
    png[16:24] = struct.pack(">II", 40000, 40000)  # IHDR width and height, then its CRC
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (folder / "bomb.png").write_bytes(bytes(png))
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for name, fmt in (("cut.png", "PNG"), ("cut.jpg", "JPEG")):
        Image.fromarray(image).save(folder / name, format=fmt)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "dangling.png").symlink_to("missing.png")
    return [folder / name for name in BAD_IMAGES]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    write_images(tmp_path / "images", 6)
    return tmp_path / "images"


@pytest.fixture(scope="session")
def style_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short style-transfer training (``debug=fast``, 4 steps), shared by the tests that need a checkpoint."""
    run_dir = tmp_path_factory.mktemp("style_run")
    train_run(run_dir, "debug=fast")
    return run_dir


def style_task(loss_net: LossNetwork, run_config: str | None = None) -> StyleTransferTask:
    """A tiny style-transfer task whose criterion uses ``loss_net`` (content and style at relu1_2)."""
    terms = {"content": FeatureLoss(1.0, ["relu1_2"]), "style": GramStyleLoss(1.0, ["relu1_2"])}
    return StyleTransferTask(
        style="mosaic",
        style_size=16,
        net=StyleTransferNet(width=4, n_residual=1),
        criterion=PerceptualCriterion(terms, loss_net=loss_net),
        optimizer=torch.optim.Adam,
        run_config=run_config,
    )
