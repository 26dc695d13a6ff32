"""Export the zoo style nets to ONNX and TorchScript: file sizes, parity, and CPU latency against PyTorch.

    PYTHONPATH=src .venv/bin/python experiments/export/benchmark.py [--size 512] [--rounds 7] [--nets NAME ...]

For each net: the files written by ``perceptual.inference.export.export_net`` (into a temporary folder), the largest
|exported - PyTorch| on a photo, and the latency of one ``size x size`` image (batch 1) for PyTorch eager fp32, the
TorchScript module and ONNX Runtime's CPU provider, all on the CPU. The three run in turn, round after round, and
each gets the median of its rounds: on a shared machine the load then weighs on all three alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import torch
from torchvision.transforms.v2 import functional as TF

from perceptual.imaging.io import load_image
from perceptual.inference.export import export_net, load_exported
from perceptual.inference.runner import describe_device, load_net
from perceptual.locations import resolve

PHOTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "content" / "chicago.jpg"
EAGER = "PyTorch eager fp32"
FORMATS = {"torchscript": ("TorchScript", ".pt"), "onnx": ("ONNX Runtime, CPU provider", ".onnx")}


def photo(size: int) -> torch.Tensor:
    """The chicago photo centre-cropped to ``size x size`` (random pixels when ../shared is absent)."""
    if not PHOTO.is_file():
        return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    image = TF.resize(load_image(PHOTO), size, antialias=True)
    return TF.center_crop(image, [size, size])[None].contiguous()


def interleaved_ms(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median milliseconds per call of each run, calling them in turn ``rounds`` times after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(rounds + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_index:
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["starry_night", "candy"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(describe_device(torch.device("cpu")), f"| onnxruntime {onnxruntime.__version__}")
    image = photo(args.size)
    table = [
        f"| net | runs as | file MB | export s | max abs diff at {args.size}² | latency ms at {args.size}² |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.nets:
            net, _ = load_net(f"zoo:{name}")
            reference = net(image)
            runs: dict[str, Callable[[], object]] = {EAGER: lambda net=net: net(image)}
            files = {EAGER: (resolve(f"zoo:{name}"), "", "")}  # the zoo entry: fp16 weights
            for fmt, (label, suffix) in FORMATS.items():
                start = time.perf_counter()
                result = export_net(net, fmt, Path(folder) / f"{name}{suffix}")
                seconds = time.perf_counter() - start
                run = load_exported(result.path)
                runs[label] = lambda run=run: run(image)
                files[label] = (result.path, f"{seconds:.0f}", f"{(run(image) - reference).abs().max().item():.1e}")
            latency = interleaved_ms(runs, args.rounds)
            for label, (path, seconds, diff) in files.items():
                size_mb = path.stat().st_size / 2**20
                table.append(f"| {name} | {label} | {size_mb:.1f} | {seconds} | {diff} | {latency[label]:.0f} |")
    print("\n".join(table))


if __name__ == "__main__":
    main()
