"""Time and peak memory of forward+backward: chunked contextual loss vs the dense reference.

Every measurement runs in a fresh subprocess so peaks do not leak between variants; memory and
time are measured in separate ones. On CUDA the peak is ``torch.cuda.max_memory_allocated``
above what was allocated before the step. On CPU it is the rise of the process's peak RSS
(``ru_maxrss``) over its RSS just before the step, after a small warm-up that loads the kernels;
glibc runs with a fixed mmap threshold (``MALLOC_MMAP_THRESHOLD_``) so that freed tensors go back
to the OS at once and RSS follows the live tensors instead of the heap's fragmentation. Time is
the best of ``--repeats`` warm steps under the default allocator (the minimum is the estimate
least disturbed by other processes on a shared machine; ``--threads 1`` steadies it further).

    python experiments/benchmarks/contextual_memory.py --batches 1 4 --chunk-sizes 256 512 1024 2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from perceptual.losses.contextual import DEFAULT_CHUNK_SIZE, contextual_loss, contextual_loss_dense

MIB = 2**20
MMAP_THRESHOLD = 64 * 1024  # bytes; setting it also switches off glibc's dynamic threshold


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _step(x: torch.Tensor, y: torch.Tensor, chunk_size: int | None) -> None:
    loss = contextual_loss_dense(x, y) if chunk_size is None else contextual_loss(x, y, chunk_size=chunk_size)
    loss.backward()
    x.grad = None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_memory(x: torch.Tensor, y: torch.Tensor, chunk_size: int | None) -> dict:
    """Peak memory of one forward+backward step above what was in use before it, in MiB."""
    device = x.device.type
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _step(x, y, chunk_size)
        return {"peak_mib": (torch.cuda.max_memory_allocated() - base) / MIB, "exact": True}
    base, peak_before = _current_rss_bytes(), _peak_rss_bytes()
    _step(x, y, chunk_size)
    peak = _peak_rss_bytes()
    # A peak below the earlier high-water mark is invisible to ru_maxrss: then it is only an upper bound.
    return {"peak_mib": (peak - base) / MIB, "exact": peak > peak_before}


def measure_time(x: torch.Tensor, y: torch.Tensor, chunk_size: int | None, repeats: int) -> dict:
    """Best wall time over warm forward+backward steps, in ms."""
    _step(x, y, chunk_size)
    times = []
    for _ in range(repeats):
        _sync(x.device.type)
        start = time.perf_counter()
        _step(x, y, chunk_size)
        _sync(x.device.type)
        times.append(time.perf_counter() - start)
    return {"time_ms": 1000 * min(times)}


def worker(args: argparse.Namespace) -> dict:
    device, batch, chunk, what = args.worker
    if args.threads:
        torch.set_num_threads(args.threads)
    chunk_size = int(chunk) or None
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(int(batch), args.channels, args.side, args.side, generator=generator).to(device)
    y = torch.randn(int(batch), args.channels, args.side, args.side, generator=generator).to(device)
    x.requires_grad_()
    _step(x[..., :8, :8].detach().requires_grad_(), y[..., :8, :8], chunk_size)  # warm-up: load kernels
    _sync(device)
    return measure_memory(x, y, chunk_size) if what == "memory" else measure_time(x, y, chunk_size, args.repeats)


def run_variant(args: argparse.Namespace, device: str, batch: int, chunk_size: int | None) -> dict:
    """Memory, then time, of one variant, each in a fresh subprocess."""
    result = {}
    for what in ("memory", "time"):
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD)) if what == "memory" else None
        command = [sys.executable, __file__, "--worker", device, str(batch), str(chunk_size or 0), what]
        command += ["--side", str(args.side), "--channels", str(args.channels)]
        command += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
        result |= json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=65, help="feature map side: N = side^2 positions")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[DEFAULT_CHUNK_SIZE])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--worker", nargs=4, metavar=("DEVICE", "BATCH", "CHUNK", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    print(f"N = {args.side}x{args.side} = {args.side**2} positions, C = {args.channels}, forward+backward")
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} CPU thread(s), time: best of {args.repeats}", end="")
    print(f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    print()
    print("| device | batch | variant | time ms | peak MiB | peak / dense | time / dense |")
    print("|---|---|---|---:|---:|---:|---:|")
    for device in args.devices:
        for batch in args.batches:
            dense = run_variant(args, device, batch, None)
            rows = [("dense reference", dense)]
            rows += [(f"chunked, chunk_size={k}", run_variant(args, device, batch, k)) for k in args.chunk_sizes]
            for name, r in rows:
                peak = f"{r['peak_mib']:.1f}" if r["exact"] else f"<= {r['peak_mib']:.1f}"
                print(
                    f"| {device} | {batch} | {name} | {r['time_ms']:.1f} | {peak} | "
                    f"{r['peak_mib'] / dense['peak_mib']:.3f} | {r['time_ms'] / dense['time_ms']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
