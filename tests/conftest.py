"""Shared fixtures: repository paths, CLI runners, small generated images."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def cli_command(script: str, *overrides: str) -> list[str]:
    """The command line of ``src/<script>``, run from the repository root."""
    return [sys.executable, str(REPO / "src" / script), *overrides]


def cli_env(**variables: str) -> dict[str, str]:
    """The environment entry points run in: this one, quieter, plus ``variables``."""
    return {**os.environ, "PYTHONWARNINGS": "ignore::FutureWarning", "HYDRA_FULL_ERROR": "0", **variables}


def run_cli(script: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``src/<script>`` as a user would, from the repository root."""
    return subprocess.run(
        cli_command(script, *overrides), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=cli_env()
    )


def compose_train(*overrides: str, hydra_config: bool = False) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides``, as ``src/train.py`` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)


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
def trained_style_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short style-transfer training through the CLI, shared by the tests that need a checkpoint."""
    run_dir = tmp_path_factory.mktemp("style_run")
    result = run_cli("train.py", "debug=fast", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
