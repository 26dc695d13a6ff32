"""Turn finished training runs into zoo entries: ``python experiments/zoo/pack.py <manifest.json> [...] --zoo DIR``.

Each manifest (written by ``gpu_run.sh`` per run) names the run directory, the entry's name and description, the
command that trained it and its start and end times; the entry gets the step count of the run's ``last.ckpt`` and a
command that reproduces exactly that many steps, on the same learning-rate schedule. Runs that wrote no checkpoint
are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perceptual.checkpoints import read_checkpoint
from perceptual.zoo import save_entry


def reproducing_command(command: str, steps: int) -> str:
    """The run's command with its time limit and planned steps replaced by the steps it reached (what someone else
    can re-run). A run stopped by its time limit before its planned steps keeps the planned length of its schedule,
    so that the re-run's learning rate follows the same curve."""
    words = [w for w in command.split() if not w.startswith(("trainer.max_time=", "hydra.run.dir="))]
    planned = [int(w.split("=", 1)[1]) for w in words if w.startswith("trainer.max_steps=")]
    words = [w for w in words if not w.startswith("trainer.max_steps=")]
    if planned and planned[-1] != steps and "scheduler=cosine" in words:
        words.append(f"task.scheduler.T_max={planned[-1]}")
    return " ".join([*words, f"trainer.max_steps={steps}"])


def pack(manifest_path: Path, zoo_dir: Path, hardware: str) -> str:
    run = json.loads(manifest_path.read_text())
    ckpt = Path(run["run_dir"]) / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return f"{run['name']}: no checkpoint in {ckpt.parent}, skipped"
    checkpoint = read_checkpoint(ckpt)
    steps = int(checkpoint["global_step"])
    minutes = (float(run["ended"]) - float(run["started"])) / 60
    metadata = {
        "description": run["description"],
        "trained_on": run["trained_on"],
        "loss_net_weights": run["loss_net_weights"],
        "wall_time": f"{minutes:.1f} min ({run['shared_with']})",
        "hardware": hardware,
        "command": reproducing_command(run["command"], steps),
        "steps": steps,
    }
    (zoo_dir / f"{run['name']}.pt").unlink(missing_ok=True)  # a re-pack replaces the earlier snapshot
    save_entry(checkpoint, run["name"], metadata, zoo_dir)
    return f"{run['name']}: {steps} steps in {minutes:.1f} min -> {zoo_dir / run['name']}.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--zoo", type=Path, required=True, help="folder the entries are written to")
    parser.add_argument("--hardware", default="unknown")
    args = parser.parse_args()
    args.zoo.mkdir(parents=True, exist_ok=True)
    for manifest in args.manifests:
        try:
            print(pack(manifest, args.zoo, args.hardware), flush=True)
        except Exception as error:  # one broken run must not cost the others their entries
            print(f"{manifest}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
