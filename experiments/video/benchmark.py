"""Temporal stability of stylised video: warping error (Lai et al. 2018) and stylisation of per-frame output
(``temporal=none``) against the stabilised variants of ``temporal=stable``, on noisy panning clips of real photos.

    PYTHONPATH=src .venv/bin/python experiments/video/benchmark.py [--nets zoo:starry_night zoo:candy] \
        [--frames 12] [--size 192 256] [--blends 0.1 0.2] [--noise-free] [--cli] [--strips experiments/video]

Clips: each photo (the three held-out content photos and a BSDS500 test photo) is scaled to cover the pan and a
``--size`` window moves over it, with Gaussian noise of std ``--noise`` drawn anew per frame
(:func:`perceptual.inference.temporal.panning_clip`), in two kinds: a whole-pixel pan of (2, 1) px per frame and a
sub-pixel pan of (1.5, 0.5) px per frame (a (3, 1) pan of the photo at twice the size, shrunk by 2). Each clip is
encoded with the library's writer (libx264, crf 18) and decoded back, so the nets see what they would see from a file.

Warping error: with the exact flow of the pan ("E_gt", non-occluded = pixels whose source is inside the previous
frame), and as on a real clip, with Farneback flow of the input frames and its forward-backward consistency mask
("E_fb"; the stabiliser uses DIS flow, so this check does not grade it with its own flow). Stylisation: the
Gram-distance ratio of :class:`perceptual.evaluation.quality.StyleJudge` (HED VGG-16 features, style image at 256 px)
on every ``--judge-every``-th frame (default: all) against the clean window of the photo. "x" columns divide by
``temporal=none`` on the same clip.

The only real camera clip available offline, scikit-image's ``no_time_for_that_tiny.gif`` (25x14 px, 24 frames),
upscaled x8 bicubic, is measured with Farneback flow only. ``--noise-free`` adds per-frame output of the clips
before noise and encoding (does noise cause the flicker?). ``--cli`` runs ``src/stylize.py`` end to end on the first
clip, default settings against ``temporal=none``, and measures the videos it writes. ``--speed`` times, per frame,
the net and the stabiliser's own work (DIS flow both ways, the two bicubic shifts) at ``--size`` and 720p, and exits.

"s/frame" in the table is the wall time per frame of each variant; the net's outputs are remembered across variants,
so "none" and "align" include the net and later rows only the stabiliser's own work.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path

import skimage
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.benchmark import Timer
from torchvision.transforms.v2 import functional as TF

from perceptual.data.sample import resolve_image
from perceptual.evaluation.quality import StyleJudge, gram_distance
from perceptual.imaging.io import load_image, save_image
from perceptual.inference.runner import Runner, describe_device, load_net
from perceptual.inference.temporal import (
    Stabiliser,
    input_motion,
    panning_clip,
    reliable_flow,
    translate,
    warp,
    warping_error,
)
from perceptual.inference.video import VideoReader, VideoWriter

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
PHOTOS = [
    *sorted((SHARED / "content").glob("*.jpg")),
    SHARED / "photos" / "bsds500" / "test" / "100039.jpg",
]
PANS = {"whole": ((2, 1), 1), "sub": ((3, 1), 2)}  # name: (step in photo pixels, zoom): (2, 1) and (1.5, 0.5) px
REAL_CLIP = Path(skimage.data.__file__).parent / "no_time_for_that_tiny.gif"
FPS = Fraction(25)
BATCH = 4
STRIP = ("none", "align", "align+blend 0.2")  # the outputs shown in the strips
FIGURES = ("E_gt", "E_fb", "gram")
NOISE_FREE = "none, no noise"  # per-frame output of the clean frames: how much of the flicker noise causes


def cover(photo: Tensor, height: int, width: int) -> Tensor:
    """``photo`` scaled (aspect kept) to cover ``height`` x ``width``, centre-cropped to it."""
    scale = max(height / photo.shape[-2], width / photo.shape[-1])
    size = [max(height, round(photo.shape[-2] * scale)), max(width, round(photo.shape[-1] * scale))]
    return TF.center_crop(TF.resize(photo, size, antialias=True), [height, width])


def read_video(path: Path) -> Tensor:
    with VideoReader(path) as reader:
        return torch.cat(list(reader.batches(16)))


def make_clips(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Noisy panning clips as written to and read from files, with their clean frames and exact flows."""
    (height, width), clips = args.size, []
    for index, path in enumerate(PHOTOS[: args.photos]):
        for pan, ((dx, dy), zoom) in PANS.items():
            span = ((args.frames - 1) * dy + height * zoom, (args.frames - 1) * dx + width * zoom)
            photo = cover(load_image(path), *span)
            clean, flows, masks = panning_clip(photo, (height, width), (dx, dy), args.frames, zoom=zoom)
            noisy, _, _ = panning_clip(photo, (height, width), (dx, dy), args.frames, args.noise, seed=index, zoom=zoom)
            file = folder / f"{path.stem}_{pan}.mp4"
            writer = VideoWriter(file, FPS, width, height)
            writer.write(noisy)
            writer.close()
            clips.append({"name": f"{path.stem} {pan}", "file": file, "frames": read_video(file), "clean": clean})
            clips[-1]["gt"] = (flows, masks)
    return clips


def real_clip() -> dict:
    frames = F.interpolate(read_video(REAL_CLIP), scale_factor=8, mode="bicubic").clamp(0, 1)
    return {"name": "real gif x8", "frames": frames, "clean": frames, "gt": None}


def memoised(runner: Runner) -> Callable[[Tensor], Tensor]:
    """``runner`` that remembers its outputs by input, so variants sharing frames (or alignment) run the net once."""
    cache: dict[tuple, Tensor] = {}

    def apply(batch: Tensor) -> Tensor:
        key = (tuple(batch.shape), hash(batch.numpy().tobytes()))
        if key not in cache:
            cache[key] = runner(batch).cpu()
        return cache[key]

    return apply


def variants(args: argparse.Namespace, stride: int) -> dict[str, Stabiliser | None]:
    """Per-frame output, alignment alone, alignment + blending, blending alone (fresh state per clip)."""
    chosen: dict[str, Stabiliser | None] = {"none": None, "align": Stabiliser(stride, 0.0)}
    chosen |= {f"align+blend {w}": Stabiliser(stride, w) for w in args.blends}
    chosen[f"blend {args.blends[-1]}"] = Stabiliser(stride, args.blends[-1], align=False)
    if args.noise_free:
        chosen[NOISE_FREE] = None
    return chosen


def run(apply: Callable[[Tensor], Tensor], stabiliser: Stabiliser | None, frames: Tensor) -> Tensor:
    batches = [frames[i : i + BATCH] for i in range(0, len(frames), BATCH)]
    return torch.cat([apply(b) if stabiliser is None else stabiliser(apply, b) for b in batches])


class GramRatio:
    """:meth:`StyleJudge.gram_ratio` on every ``every``-th frame, the photo's Gram distance computed once per clip."""

    def __init__(self, ckpt: str, every: int) -> None:
        style = resolve_image(str(SHARED / "styles" / f"{ckpt.removeprefix('zoo:')}.jpg"), "style", 256)
        self.judge, self.every, self.photos = StyleJudge(style), every, {}

    def distance(self, frames: Tensor) -> Tensor:
        return gram_distance(self.judge.loss_net(frames[:: self.every], self.judge.layers), self.judge.style_grams)

    def __call__(self, outputs: Tensor, clip: dict) -> float:
        if clip["name"] not in self.photos:
            self.photos[clip["name"]] = self.distance(clip["clean"])
        return (self.distance(outputs) / self.photos[clip["name"]]).mean().item()


def measure(outputs: Tensor, clip: dict, gram: GramRatio) -> dict[str, float]:
    row = {"E_fb": warping_error(outputs, *clip["fb"]).mean().item()}
    if clip["gt"] is not None:
        row["E_gt"] = warping_error(outputs, *clip["gt"]).mean().item()
    row["gram"] = gram(outputs, clip)
    return row


def flicker_strip(clip: dict, outputs: dict[str, Tensor], t: int, path: Path) -> None:
    """Rows: input, then each output; columns: frames t-1 and t, and |O_t - warp(O_{t-1})| x 4 (exact flow)."""
    flows, masks = clip["gt"]
    rows = []
    for frames in [clip["frames"], *outputs.values()]:
        warped, _ = warp(frames[t - 1 : t], flows[t - 1 : t])
        difference = ((frames[t] - warped[0]).abs() * 4 * masks[t - 1]).clamp(0, 1)
        rows.append(torch.cat([frames[t - 1], frames[t], difference], dim=2))
    save_image(torch.cat(rows, dim=1), path)


def cli(ckpt: str, clip: dict, folder: Path, gram: GramRatio) -> None:
    """``src/stylize.py`` on the clip's file, default settings against temporal=none, measured from its output."""
    results = {}
    for overrides in (["device=cpu"], ["device=cpu", "temporal=none"]):
        target = folder / f"cli_{len(overrides)}.mp4"
        command = [sys.executable, "src/stylize.py", f"ckpt={ckpt}", f"input={clip['file']}", f"output={target}"]
        start = time.perf_counter()
        subprocess.run([*command, *overrides], check=True, cwd=REPO, capture_output=True)
        seconds = time.perf_counter() - start
        with VideoReader(target) as reader:
            fps, frames = reader.info.fps, torch.cat(list(reader.batches(16)))
        results[overrides[-1]] = measure(frames, clip, gram)
        print(f"cli {ckpt} {clip['name']} {overrides[-1]}: {len(frames)} frames at {fps} fps in {seconds:.0f} s")
    stable, none = results["device=cpu"], results["temporal=none"]
    ratios = ", ".join(f"{key} x {stable[key] / none[key]:.3f}" for key in FIGURES)
    print(f"cli {ckpt} {clip['name']}: temporal=stable against temporal=none: {ratios}")


def there_and_back(image: Tensor, shifts: Tensor) -> Tensor:
    return translate(translate(image, shifts), -shifts)


def speed(runner: Runner, sizes: list[tuple[int, int]]) -> None:
    """Median seconds per frame of the net and of the stabiliser's own work (flow both ways + the two shifts)."""
    for height, width in sizes:
        frames = cover(load_image(PHOTOS[1]), height + 1, width + 2)
        current, previous = frames[:, 1:, 2:], frames[:, :-1, :-2]
        work = {
            "net": partial(runner, current[None]),
            "flow (DIS, both ways)": partial(reliable_flow, current, previous, "dis"),
            "shifts (2 x bicubic)": partial(there_and_back, current[None], torch.tensor([[1.5, 0.5]])),
        }
        for name, call in work.items():
            timer = Timer("call()", globals={"call": call}, num_threads=torch.get_num_threads())
            print(f"speed {height}x{width} {name}: {timer.blocked_autorange(min_run_time=2).median:.3f} s/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["zoo:starry_night", "zoo:candy"])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, nargs=2, default=[192, 256], help="frame height and width")
    parser.add_argument("--noise", type=float, default=0.03, help="std of the per-frame Gaussian noise")
    parser.add_argument("--blends", type=float, nargs="+", default=[0.1, 0.2], help="video.blend values")
    parser.add_argument("--photos", type=int, default=len(PHOTOS), help="use the first N photos")
    parser.add_argument("--judge-every", type=int, default=1)
    parser.add_argument("--noise-free", action="store_true", help="add per-frame output of the noise-free frames")
    parser.add_argument("--cli", action="store_true", help="run src/stylize.py end to end on the first clip")
    parser.add_argument("--speed", action="store_true", help="time the net and the stabiliser's work per frame")
    parser.add_argument("--strips", type=Path, help="write strip_<net>.jpg of the first clip into this folder")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(describe_device(torch.device("cpu")))

    if args.speed:
        for ckpt in args.nets:
            print(ckpt)
            speed(Runner(load_net(ckpt)[0], "cpu"), [tuple(args.size), (720, 1280)])
        return
    folder = Path(tempfile.mkdtemp(prefix="video_benchmark_"))
    clips = make_clips(args, folder) + [real_clip()]
    for clip in clips:
        clip["fb"] = input_motion(clip["frames"], "farneback")

    rows: list[dict] = []
    print(f"{'net':<18} {'clip':<20} {'variant':<16} {'E_gt':>9} {'E_fb':>9} {'gram':>7} {'s/frame':>8}  x none")
    for ckpt in args.nets:
        runner, gram = Runner(load_net(ckpt)[0], "cpu"), GramRatio(ckpt, args.judge_every)
        for clip in clips:
            apply, base = memoised(runner), None
            for name, stabiliser in variants(args, runner.net.downsample).items():
                start = time.perf_counter()
                outputs = run(apply, stabiliser, clip["clean" if name == NOISE_FREE else "frames"])
                seconds = (time.perf_counter() - start) / len(outputs)
                row = measure(outputs, clip, gram)
                base = base or row
                row |= {f"{key} x": row[key] / base[key] for key in FIGURES if key in row}
                rows.append({"net": ckpt, "clip": clip["name"], "variant": name, **row})
                gt = f"{row['E_gt']:.6f}" if "E_gt" in row else "-"
                ratios = " ".join(f"{key} {row[f'{key} x']:.2f}" for key in FIGURES if key in row)
                print(
                    f"{ckpt:<18} {clip['name']:<20} {name:<16} {gt:>9} {row['E_fb']:>9.6f} {row['gram']:>7.4f}"
                    f" {seconds:>8.2f}  {ratios}"
                )
                if args.strips and clip is clips[0] and name in STRIP:
                    clip.setdefault("strip", {})[name] = outputs
            if "strip" in clip:
                path = args.strips / f"strip_{ckpt.removeprefix('zoo:')}.jpg"
                flicker_strip(clip, clip.pop("strip"), args.frames // 2, path)

    print("\nmean over the panning clips of the ratio to temporal=none:")
    for ckpt in args.nets:
        for pan in PANS:
            for name in dict.fromkeys(row["variant"] for row in rows):
                chosen = [r for r in rows if r["net"] == ckpt and r["variant"] == name and r["clip"].endswith(pan)]
                means = " ".join(f"{key} x {statistics.mean(r[f'{key} x'] for r in chosen):.3f}" for key in FIGURES)
                print(f"{ckpt:<18} {pan + ' pans':<12} {name:<16} {means}")
    if args.cli:
        for ckpt in args.nets:
            cli(ckpt, clips[0], folder, GramRatio(ckpt, args.judge_every))


if __name__ == "__main__":
    main()
