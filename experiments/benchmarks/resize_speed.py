"""Time of the MATLAB-compatible ``imresize`` beside torch's bicubic ``interpolate`` (a different resampler).

The SR protocol resizes every benchmark image and every training crop with ``perceptual.imaging.resize.imresize``;
this prints the best of ``--repeats`` calls (the estimate least disturbed by other processes on a shared machine).

    python experiments/benchmarks/resize_speed.py --size 512 --repeats 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from perceptual.imaging.resize import imresize


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: kernels and resize matrices
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="side of the square RGB image")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    image = torch.rand(3, args.size, args.size)
    small = (args.size // 4, args.size // 4)
    variants = {
        "imresize x1/4 (float)": lambda: imresize(image, 0.25),
        "imresize x1/4 (uint8 mode)": lambda: imresize(image, 0.25, uint8=True),
        "imresize x4 (float)": lambda: imresize(image[:, : small[0], : small[1]], 4),
        "torch interpolate bicubic x1/4, antialias": lambda: F.interpolate(
            image[None], size=small, mode="bicubic", antialias=True
        ),
    }
    print(f"{args.size}x{args.size} RGB, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| operation | best of {args.repeats} (ms) |")
    print("|---|---|")
    for name, run in variants.items():
        print(f"| {name} | {1000 * best_seconds(run, args.repeats):.1f} |")


if __name__ == "__main__":
    main()
