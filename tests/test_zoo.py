"""The model zoo: slim fp16 entries from a real training checkpoint, ``zoo:<name>`` resolution, listing, the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class, get_method

from conftest import run_cli, run_command
from perceptual.checkpoints import METADATA_KEY, checkpoint_metadata, read_checkpoint
from perceptual.errors import ConfigError, DataError
from perceptual.inference.runner import load_net
from perceptual.locations import ZOO_DIR, ZOO_ENV, resolve
from perceptual.zoo import format_table, headline, list_entries, save_entry

METADATA = {
    "description": "tiny smoke-test net",
    "trained_on": "scikit-image sample photos",
    "loss_net_weights": "random",
    "wall_time": "30 s",
    "hardware": "2-core CPU",
    "command": "python src/train.py debug=fast",
    "metrics": {"val/loss": 0.5},
}


@pytest.fixture(scope="module")
def ckpt(style_run: Path) -> Path:
    return style_run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def zoo_dir(ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zoo folder holding one entry, ``tiny``, made from the training checkpoint."""
    folder = tmp_path_factory.mktemp("zoo")
    save_entry(ckpt, "tiny", METADATA, zoo_dir=folder)
    return folder


def test_entry_is_fp16_net_weights_only(ckpt: Path, zoo_dir: Path) -> None:
    path = resolve("zoo:tiny", zoo_dir)
    assert path == zoo_dir / "tiny.pt"
    entry = torch.load(path, weights_only=True)
    original = torch.load(ckpt, weights_only=False)
    assert set(entry) == {METADATA_KEY, "state_dict", "zoo"}
    assert checkpoint_metadata(entry) == checkpoint_metadata(original) and checkpoint_metadata(entry).task == "style"
    assert entry["state_dict"].keys() == {k for k in original["state_dict"] if k.startswith("net.")}
    dtypes = {key: value.dtype for key, value in entry["state_dict"].items()}
    assert {dtype for key, dtype in dtypes.items() if not key.endswith("num_batches_tracked")} == {torch.float16}
    assert {dtype for key, dtype in dtypes.items() if key.endswith("num_batches_tracked")} == {torch.int64}
    fp32_bytes = sum(v.numel() * v.element_size() for v in original["state_dict"].values())
    assert path.stat().st_size < fp32_bytes / 2 + 40_000  # half the fp32 weights, plus metadata and file structure
    assert path.stat().st_size < ckpt.stat().st_size / 3  # no optimiser state


def test_zoo_net_matches_checkpoint_net(ckpt: Path, zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ZOO_ENV, str(zoo_dir))
    net, metadata = load_net("zoo:tiny")
    reference, reference_metadata = load_net(ckpt)
    assert metadata == reference_metadata and all(p.dtype == torch.float32 for p in net.parameters())
    image = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(net(image), reference(image), atol=1e-3, rtol=0)


def test_listing_shows_metadata(zoo_dir: Path) -> None:
    [entry] = list_entries(zoo_dir)
    assert entry.name == "tiny" and entry.path == zoo_dir / "tiny.pt" and 0 < entry.size_mb < 10
    assert entry.metadata == {**METADATA, "task": "style", "steps": 4}
    assert f"| tiny | style | tiny smoke-test net | {entry.size_mb:.1f} | 4 | random |" in format_table([entry])


def test_listing_shows_each_entrys_main_figures() -> None:
    style = {"gram_ratio": 0.00684, "colour_spread": 0.9, "edge_correlation": 0.6186, "parity_iterations": "31.2"}
    assert headline(style) == "parity 31.2, Gram 0.007, edges 0.62"
    sr = {"set5_psnr": 28.6841, "set5_ssim": 0.82, "set5_sharpness": 1.0131, "set5_grid": 1.057}
    assert headline(sr) == "Set5 28.68 dB, sharpness 1.01, grid 1.06"
    banks = {"mosaic": {"gram_ratio": 0.111, "edge_correlation": 0.52}, "wave": {"gram_ratio": 0.015}}
    assert headline(banks) == "Gram 0.015-0.111, edges 0.52"
    assert headline({"parity_iterations": ">100", "notes": "x"}) == "parity >100" and headline({}) == "-"


def test_unknown_name_lists_the_entries(zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"no zoo entry 'nope' .*available: tiny \(list them with: python src/zoo.py\)"):
        resolve("zoo:nope", zoo_dir)
    monkeypatch.setenv(ZOO_ENV, str(zoo_dir))
    with pytest.raises(DataError, match="available: tiny"):
        load_net("zoo:../zoo/tiny")


def test_save_refuses_incomplete_metadata_and_overwriting(ckpt: Path, zoo_dir: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("lacks hardware, command; give hardware=... command=...")):
        save_entry(ckpt, "other", {**METADATA, "hardware": "", "command": None}, zoo_dir=zoo_dir)
    with pytest.raises(ConfigError, match="exists"):
        save_entry(ckpt, "tiny", METADATA, zoo_dir=zoo_dir)
    assert [path.name for path in zoo_dir.iterdir()] == ["tiny.pt"]  # no temporary files left behind


def test_listing_command_prints_the_table(
    zoo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(ZOO_ENV, str(zoo_dir))
    assert run_command("zoo.py") == 0
    [entry] = list_entries()
    assert f"| tiny | style | tiny smoke-test net | {entry.size_mb:.1f} | 4 | random |" in capsys.readouterr().out


@pytest.mark.slow
def test_add_command_reads_hydra_quoted_values(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    added = run_cli(
        "zoo.py",
        "action=add",
        "name=from_cli",
        f"ckpt={ckpt}",
        "description=added from the command line",
        "trained_on=sample photos",
        "loss_net_weights=random",
        "wall_time=30 s",
        "hardware=2-core CPU",
        "command='python src/train.py debug=fast scale=4'",
        "steps=7",
    )
    assert added.returncode == 0, added.stderr[-2000:]
    [entry] = list_entries()
    assert (entry.name, entry.metadata["steps"]) == ("from_cli", 7)
    assert entry.metadata["command"] == "python src/train.py debug=fast scale=4"


@pytest.mark.parametrize("entry", list_entries(ZOO_DIR), ids=lambda entry: entry.name)
def test_shipped_entries_load_and_run(entry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ZOO_ENV, raising=False)
    info = entry.metadata
    # a fine-tuned entry's command first fetches the net it started from (git show <commit>:zoo/<name>.pt > ...)
    assert info["loss_net_weights"] != "random" and "python src/train.py " in info["command"]
    net, _ = load_net(f"zoo:{entry.name}")
    image = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        out = net(image)
    scale = getattr(net, "scale", 1)
    assert out.shape == (1, 3, 37 * scale, 45 * scale) and torch.isfinite(out).all()
    assert out.std() > 0.01  # not collapsed to a flat colour


@pytest.mark.parametrize("entry", list_entries(ZOO_DIR), ids=lambda entry: entry.name)
def test_shipped_entries_name_importable_classes_in_their_run_config(entry) -> None:
    """Objective parity rebuilds a net's criterion from the run config its entry records: every ``_target_`` there
    (loss network, loss terms, net, task) must stay importable when the package is reorganised."""
    run_config = checkpoint_metadata(read_checkpoint(entry.path)).run_config
    if run_config is None:
        pytest.skip("entry records no run config")
    targets = set(re.findall(r"_target_: ([\w.]+)", run_config))
    assert targets
    for target in targets:
        get_class(target) if target[target.rfind(".") + 1].isupper() else get_method(target)
