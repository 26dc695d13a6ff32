"""Checkpoints load without running code: a file that names code to call is refused in one line by every command
that reads checkpoints, unless ``trust_checkpoint=true`` opts in; every checkpoint this project has written loads."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
import torch

from conftest import REPO, error_lines, run_command, write_images
from perceptual.checkpoints import read_checkpoint
from perceptual.errors import DataError
from perceptual.training import checkpoint_path

OLD = Path(__file__).parent / "data" / "checkpoints"


class Payload:
    """Unpickling calls ``exec`` on code that writes ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return builtins.exec, (f"open({str(self.target)!r}, 'w').write('ran')",)


def crafted(tmp_path: Path) -> tuple[Path, Path]:
    """A .ckpt that looks like a training checkpoint and runs code when unpickled, and the file the code writes."""
    target = tmp_path / "ran.txt"
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "optimizer_states": [], "loops": {}, "hyper_parameters": Payload(target)}, path)
    return path, target


def test_a_crafted_checkpoint_is_refused_in_one_line_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path, target = crafted(tmp_path)
    write_images(tmp_path / "photos", 1)
    with pytest.raises(DataError, match=r"refused to load checkpoint .*: it names exec, .*trust_checkpoint=true") as e:
        read_checkpoint(path)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"refused to load ckpt_path .*: it names exec"):
        checkpoint_path(str(path))
    for script, overrides in {
        "stylize.py": (f"input={tmp_path}", f"output={tmp_path}/out"),
        "export.py": ("format=torchscript", f"output={tmp_path}/net.pt"),
        "evaluate.py": (f"input={tmp_path}/photos", "scale=4", f"paths.output_dir={tmp_path}/run"),
    }.items():
        capsys.readouterr()
        assert run_command(script, f"ckpt={path}", *overrides) == 2
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr
        (line,) = error_lines(stderr)
        assert line.startswith(f"error: refused to load checkpoint {path}: it names exec"), script
    assert not target.exists()


def test_trust_checkpoint_opts_in_to_full_unpickling(tmp_path: Path) -> None:
    path, target = crafted(tmp_path)
    with pytest.raises(DataError, match="not a perceptual checkpoint"):  # it loads (and runs), then is no net
        read_checkpoint(path, trust=True)
    assert target.read_text() == "ran"


def test_every_shipped_checkpoint_loads_safely() -> None:
    files = sorted(OLD.glob("*.ckpt")) + sorted(OLD.glob("*_zoo.pt")) + sorted((REPO / "zoo").glob("*.pt"))
    assert len(files) >= 8
    for path in files:
        assert read_checkpoint(path)["state_dict"], path  # weights_only=True throughout
