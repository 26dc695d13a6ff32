"""Peak memory and time of tiled against untiled stylisation, by image size, and the tiled output's PSNR.

Each configuration runs in a fresh worker process doing what ``python src/stylize.py ckpt=... input=... output=...
[tile=...]`` does without Hydra (load the net, ``Runner``, ``with_tiling``, ``transform_files``: read the PNG,
stylise, write the PNG). Its peak RSS is the worker's ``ru_maxrss`` from ``os.wait4`` (the whole process: Python,
torch and the net included; the ``idle`` row is a worker that only imports and loads the net). Times are the wall and
the CPU time (all threads) of the worker's ``transform_files`` call: on a machine shared with other jobs the CPU time
is the steadier figure. PSNR compares the tiled PNG with the untiled one (8-bit RGB).

    python experiments/tiling/benchmark.py --sizes 512 1024 2048 --tile 512
    python experiments/tiling/benchmark.py --sizes 8192 --tile 1024 --tiled-only     # long: run it with nohup

Inputs are a photo resized to size x size (bicubic) and cached in ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

MIB = 2**20
PHOTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "content" / "chicago.jpg"


def worker(args: argparse.Namespace) -> None:
    """One configuration: print the seconds ``transform_files`` took as JSON (nothing with ``--idle``)."""
    import torch

    from perceptual.inference.image_files import transform_files
    from perceptual.inference.runner import Runner, load_net
    from perceptual.inference.tiling import with_tiling

    if args.threads:
        torch.set_num_threads(args.threads)
    net, _ = load_net(args.ckpt)
    if args.idle:
        return
    apply = with_tiling(Runner(net, "cpu"), net, args.tile or None)
    start, start_cpu = time.perf_counter(), time.process_time()
    report = transform_files(apply, [(Path(args.input), Path(args.output))], batch_size=1)
    if report.failed:
        raise SystemExit(f"failed: {report.failed}")
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu}))


def run_worker(*options: str) -> dict:
    """Run a worker process; its JSON output plus its peak RSS in MiB."""
    command = [sys.executable, __file__, "--worker", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"worker failed ({process.returncode}): {' '.join(command)}")
    result = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    return {**result, "peak_mib": usage.ru_maxrss * 1024 / MIB}  # Linux reports KiB


def photo(size: int, workdir: Path) -> Path:
    """The benchmark photo resized to ``size`` x ``size``, written once."""
    path = workdir / f"photo_{size}.png"
    if not path.exists():
        if PHOTO.exists():
            image = Image.open(PHOTO).convert("RGB")
        else:
            from skimage import data

            image = Image.fromarray(data.astronaut())
        image.resize((size, size), Image.Resampling.BICUBIC).save(path, compress_level=1)
    return path


def psnr_8bit(a: Path, b: Path) -> float:
    x = np.asarray(Image.open(a), dtype=np.float64)
    y = np.asarray(Image.open(b), dtype=np.float64)
    mse = np.mean((x - y) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="zoo:starry_night")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--tile", type=int, default=512, help="window size (px) of the tiled runs")
    parser.add_argument("--tiled-only", action="store_true", help="skip the untiled runs (sizes that do not fit)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tiling_benchmark"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    common = ["--ckpt", args.ckpt, "--threads", str(args.threads)]
    print(f"{args.ckpt}, tile={args.tile}, threads={args.threads or 'default'}, load {os.getloadavg()[0]:.1f}")
    idle = run_worker(*common, "--idle")["peak_mib"]
    rows = [f"| idle (Python, torch, net) | - | {idle:.0f} | - | - | - | - |"]
    for size in args.sizes:
        source = photo(size, args.workdir)
        results = {}
        for tile in ([] if args.tiled_only else [None]) + [args.tile]:
            target = args.workdir / f"out_{size}_{tile or 'untiled'}.png"
            options = [*common, "--input", str(source), "--output", str(target)]
            result = run_worker(*options, "--tile", str(tile or 0))
            results[tile] = {**result, "output": target}
            print(f"{size} tile={tile}: {result}", flush=True)
        for tile, result in results.items():
            untiled = results.get(None)
            ratio = f"{result['peak_mib'] / untiled['peak_mib']:.2f}" if untiled else "-"
            quality = f"{psnr_8bit(result['output'], untiled['output']):.1f}" if untiled and tile else "-"
            rows.append(
                f"| {size}² | {tile or 'untiled'} | {result['peak_mib']:.0f} | {ratio} | {result['cpu_seconds']:.1f} "
                f"| {result['seconds']:.1f} | {quality} |"
            )
    print("\n| image | tile | peak RSS (MiB) | vs untiled | CPU time (s) | wall time (s) | PSNR vs untiled (dB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
