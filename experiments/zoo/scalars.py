"""Write ``<run>/scalars.csv`` (step, tag, value) from each run's TensorBoard events under a folder of runs.

The event files also hold every validation's image grids, too heavy to bring back from a GPU machine whose returned
files are limited; the CSV keeps the curves.   python experiments/zoo/scalars.py <folder of run directories>
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator


def write_scalars(run_dir: Path) -> int:
    rows = []
    for events in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={SCALARS: 0})  # 0: keep every point
        accumulator.Reload()
        for tag in accumulator.Tags()[SCALARS]:
            rows += [(event.step, tag, event.value) for event in accumulator.Scalars(tag)]
    with open(run_dir / "scalars.csv", "w", newline="") as file:
        csv.writer(file).writerows([("step", "tag", "value"), *sorted(rows)])
    return len(rows)


if __name__ == "__main__":
    for run in sorted(p for p in Path(sys.argv[1]).iterdir() if (p / "tensorboard").is_dir()):
        print(f"{run.name}: {write_scalars(run)} scalars")
