"""Objective parity of a style net (Johnson et al. 2016, Fig. 5): the L-BFGS iteration count on the net's own training
criterion that reaches the objective of the net's output, per photo and as a median (see perceptual.evaluation.parity).

    python experiments/style_quality/parity.py --ckpt outputs/style/<run>/checkpoints/last.ckpt --photos photos/
    python experiments/style_quality/parity.py --ckpt zoo:stylebank --bank 0 --size 128 --iterations 10,25,50

The criterion is rebuilt from the checkpoint (run config, style image, loss-network weights). Where a recorded path
is not on this machine, --style and --loss-net-weights take copies (checked by SHA-256); a compact copy of the loss
network (perceptual.lossnet.compact) is remade by itself. Photos are resized to --size on the shorter side and
centre-cropped to a multiple of the net's stride. L-BFGS starts from uniform noise (the paper's initialisation;
--seeds 0,1,2 averages the curves of three noise starts, steadier than one; --init content starts from the photo).
Prints a table, writes parity.csv, parity.png and the images into --out, and ends with one line:
    parity <name> iterations=<median> ff=<median objective> lbfgs100=<median objective after 100 iterations>
L-BFGS curves are stored in --cache and reused for any net measured on the same criterion, photos, start and machine
(the checkpoints of one run, fine-tunes of a recipe): each further net costs one forward pass per photo. The curves
differ a little between machines (the table and the CSV name the machine): compare nets on one machine's curves.
"""

from __future__ import annotations

import argparse
import csv
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from perceptual.checkpoints import build_net, read_checkpoint
from perceptual.cli import report_errors
from perceptual.errors import DataError
from perceptual.evaluation.parity import (
    DEFAULT_ITERATIONS,
    PhotoParity,
    format_iterations,
    machine,
    measure,
    median,
    prepare_photo,
    rebuild_criterion,
    starts,
    summary_line,
)
from perceptual.imaging.io import list_images, load_image, save_image
from perceptual.inference.fusion import with_fusion
from perceptual.inference.runner import Runner
from perceptual.locations import PREFIX
from perceptual.training import flush_denormals

REPO = Path(__file__).resolve().parents[2]
SHARED_CONTENT = REPO.parent / "shared" / "data" / "content"


def integer_list(text: str, least: int, example: str) -> list[int]:
    """A comma-separated list of integers of at least ``least``, sorted and without repeats."""
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. {example}"
        ) from None
    if not values or values[0] < least:
        raise argparse.ArgumentTypeError(f"{text!r}: give integers of at least {least}, e.g. {example}")
    return values


def iteration_counts(text: str) -> list[int]:
    return integer_list(text, 1, "25,50,100,200,400")


def seed_list(text: str) -> list[int]:
    return integer_list(text, 0, "0,1,2")


def run_name(ckpt: str, bank: int | None) -> str:
    """``zoo:candy`` -> ``candy``; a run's ``<run>/checkpoints/x.ckpt`` -> ``<run>``; else the file's stem."""
    path = Path(ckpt)
    if ckpt.startswith(PREFIX):
        name = ckpt.removeprefix(PREFIX)
    elif path.parent.name == "checkpoints" and path.parent.parent.name:
        name = path.parent.parent.name
    else:
        name = path.stem
    name = "_".join(name.split())
    return name if bank is None else f"{name}:bank{bank}"


def start_text(init: str, seeds: Sequence[int]) -> str:
    """The L-BFGS start as the table and the plot name it (``seeds``: the starts that run, from ``starts``)."""
    if init == "content":
        return init
    if len(seeds) == 1:
        return f"noise (seed {seeds[0]})"
    return f"noise (seeds {','.join(map(str, seeds))}: the geometric mean of their curves)"


def per_start_medians(results: Sequence[PhotoParity]) -> list[float]:
    """For each start, the median over the photos of the equivalent iterations against that start's curve alone."""
    return [median(values) for values in zip(*(r.per_start for r in results), strict=True)]


def format_starts(values: Sequence[float], counts: Sequence[int], separator: str) -> str:
    """Equivalent iterations of each start, joined (`` / `` in the table, ``;`` in the CSV)."""
    return separator.join(format_iterations(value, counts) for value in values)


def write_csv(path: Path, results: Sequence[PhotoParity], counts: Sequence[int], start: Sequence[str]) -> None:
    """One row per photo and one of medians; ``start`` is (init, seeds, machine), the same on every row."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        values = ["feed_forward", "initial", *(f"lbfgs{k}" for k in counts), "iterations"]
        writer.writerow(["photo", *values, "per_start", "init", "seeds", "machine"])
        for r in results:
            values = [r.feed_forward, r.initial, *(r.lbfgs[k] for k in counts)]
            iterations = [format_iterations(r.iterations, counts), format_starts(r.per_start, counts, ";")]
            writer.writerow([r.name, *(f"{v:.6g}" for v in values), *iterations, *start])
        medians = [median([getattr(r, key) for r in results]) for key in ("feed_forward", "initial")]
        medians += [median([r.lbfgs[k] for r in results]) for k in counts]
        iterations = [format_iterations(median([r.iterations for r in results]), counts)]
        iterations.append(format_starts(per_start_medians(results), counts, ";"))
        writer.writerow(["median", *(f"{v:.6g}" for v in medians), *iterations, *start])


def plot(path: Path, results: Sequence[PhotoParity], counts: Sequence[int], title: str) -> None:
    import matplotlib  # optional (the dev extra): only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for r in results:
        line = axis.plot(range(0, len(r.curve) + 1), [r.initial, *r.curve], label=f"{r.name}: L-BFGS")[0]
        colour = line.get_color()
        axis.plot(counts, [r.lbfgs[k] for k in counts], "o", color=colour, markersize=4)
        label = f"{r.name}: net ({format_iterations(r.iterations, counts)} it.)"
        axis.axhline(r.feed_forward, linestyle="--", color=colour, label=label)
        if 0 < r.iterations < math.inf:
            axis.axvline(r.iterations, linestyle=":", color=colour)
    axis.set(xlabel="L-BFGS iteration", ylabel="objective (net's training criterion)", yscale="log")
    axis.set_title(textwrap.fill(title, 80), fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="style or StyleBank checkpoint, or zoo:<name>")
    parser.add_argument("--photos", nargs="+", type=Path, default=[SHARED_CONTENT], help="folders or image files")
    parser.add_argument("--size", type=int, default=256, help="shorter side of the photos (default 256)")
    parser.add_argument(
        "--iterations", type=iteration_counts, default=list(DEFAULT_ITERATIONS), help="counts to record (25,...,400)"
    )
    parser.add_argument("--init", choices=("noise", "content"), default="noise", help="L-BFGS start (paper: noise)")
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=[0],
        help="noise starts whose L-BFGS curves are averaged (default 0; 0,1,2: steadier, three times the time)",
    )
    parser.add_argument("--bank", type=int, help="StyleBank checkpoints: the bank (style) to measure (default 0)")
    parser.add_argument("--style", help="the style image, where the recorded path does not resolve here")
    parser.add_argument(
        "--out", type=Path, help="folder for parity.csv, parity.png and images (default outputs/parity/)"
    )
    parser.add_argument(
        "--loss-net-weights", help="a copy of the loss network's weights file, where the recorded path is not here"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("outputs") / "parity" / "curves",
        help="folder of L-BFGS curves reused across nets on the same criterion (default outputs/parity/curves)",
    )
    parser.add_argument("--no-cache", action="store_true", help="run L-BFGS even where a stored curve matches")
    args = parser.parse_args(argv)
    name = run_name(args.ckpt, args.bank)
    out = args.out or Path("outputs") / "parity" / name.replace(":", "_")
    flush_denormals()

    with report_errors():
        checkpoint = read_checkpoint(args.ckpt)
        criterion = rebuild_criterion(
            checkpoint, bank=args.bank, style=args.style, source=args.ckpt, loss_net_weights=args.loss_net_weights
        )
        net = build_net(checkpoint)
        runner = Runner(net, device=args.device)
        criterion = criterion.to(runner.device)
        stylise = with_fusion(runner, net, {"bank": args.bank})
        paths = [path for spec in args.photos for path in list_images(spec)]
        if not paths:
            raise DataError(f"no images in {', '.join(map(str, args.photos))}; pass --photos <folder or files>")
        counts = args.iterations
        curves_from = machine(runner.device)
        seeds = starts(args.init, args.seeds)
        several = len(seeds) > 1
        start = start_text(args.init, seeds)
        print(f"{name}: L-BFGS from {start}, {max(counts)} iterations, photos at {args.size} px shorter side")
        print(f"L-BFGS curves on {curves_from} (they differ a little between machines)")
        columns = ["photo", "size", "net", *(f"L-BFGS {k}" for k in counts), "equivalent iterations"]
        columns += ["each start's curve"] if several else []
        print(f"| {' | '.join(columns)} |")
        print(f"|{'---|' * len(columns)}")
        results = []
        for path in paths:
            photo = prepare_photo(load_image(path), args.size, net.capabilities.stride).to(runner.device)
            output = stylise(photo).to(runner.device)
            cache = None if args.no_cache else args.cache
            result = measure(criterion, photo, output, counts, args.init, seeds, path.stem, cache)
            results.append(result)
            size = "x".join(map(str, photo.shape[-2:]))
            values = " | ".join(f"{result.lbfgs[k]:.4g}" for k in counts)
            iterations = format_iterations(result.iterations, counts) + (" (stored curve)" if result.cached else "")
            if several:
                iterations += " | " + format_starts(result.per_start, counts, " / ")
            print(f"| {path.stem} | {size} | {result.feed_forward:.4g} | {values} | {iterations} |", flush=True)
            save_image(output[0].cpu(), out / f"{path.stem}_net.png")
            save_image(result.lbfgs_image[0].cpu(), out / f"{path.stem}_lbfgs{max(counts)}.png")
        values = " | ".join(f"{median([r.lbfgs[k] for r in results]):.4g}" for k in counts)
        iterations = format_iterations(median([r.iterations for r in results]), counts)
        feed_forward = median([r.feed_forward for r in results])
        if several:
            iterations += " | " + format_starts(per_start_medians(results), counts, " / ")
        print(f"| median | | {feed_forward:.4g} | {values} | {iterations} |")
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "parity.csv", results, counts, (args.init, ",".join(map(str, seeds)), curves_from))
        plot(out / "parity.png", results, counts, f"{name}: L-BFGS from {start} vs the net")
        print(f"wrote {out / 'parity.csv'} and {out / 'parity.png'}")
    print(summary_line(name, results, counts))


if __name__ == "__main__":
    main()
