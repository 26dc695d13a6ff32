"""Score super-resolution on a benchmark folder the way SR papers do: the bicubic baseline and a trained net.

Protocol (see :mod:`perceptual.evaluation.metrics`): outputs quantised to 8 bit as a saved PNG would be, PSNR / SSIM
on the Y of MATLAB's ``rgb2ycbcr`` with ``scale`` border pixels cropped, and the mean of the per-image values. The
bicubic baseline is MATLAB's ``imresize`` on 8-bit levels (``uint8=True``), which reproduces the published bicubic
rows, so the model's row is comparable with published tables. Images are processed one at a time: benchmark images
are large and differ in size.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from skimage.exposure import match_histograms
from torch import Tensor

from perceptual.choices import check_choice
from perceptual.data.batch import HR_KEY, LR_KEY, NAME_KEY
from perceptual.data.sr import SRBenchmark
from perceptual.errors import ConfigError, DataError
from perceptual.evaluation.artefacts import grid_strength
from perceptual.evaluation.metrics import psnr_y, sharpness_y, ssim_y
from perceptual.imaging.color import quantize
from perceptual.imaging.io import save_image
from perceptual.imaging.resize import imresize
from perceptual.inference.image_files import BatchReport
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.inference.runner import load_net
from perceptual.inference.tiling import AUTO
from perceptual.precision import Precision

log = logging.getLogger(__name__)

Upscaler = Callable[[Tensor], Tensor]  # LR [1, 3, h, w] -> SR [1, 3, scale * h, scale * w], float in [0, 1]

Benchmark = Literal["set5", "set14"]
BENCHMARK_FOLDERS: dict[Benchmark, str] = {"set5": "Set5", "set14": "Set14"}
BICUBIC, MODEL = "bicubic", "model"
METRICS = ("psnr", "ssim", "sharpness", "grid")  # Score fields, in table and CSV order
METRIC_TITLES = {"psnr": "PSNR", "ssim": "SSIM", "sharpness": "sharpness", "grid": "grid"}
METRIC_FORMATS = {"psnr": "{:.2f}", "ssim": "{:.4f}", "sharpness": "{:.3f}", "grid": "{:.2f}"}


def benchmark_folder(benchmark: str, benchmark_dir: str | Path, scale: int) -> Path:
    """``<benchmark_dir>/<Set>/x<scale>``; a scale without its own folder (x8) takes the HR images of the folder of
    its largest factor (x4), which :class:`SRBenchmark` modcrops and downscales itself."""
    folder = BENCHMARK_FOLDERS[check_choice("benchmark", benchmark.lower(), Benchmark)]
    root = Path(benchmark_dir).expanduser() / folder
    factors = [s for s in range(scale, 1, -1) if scale % s == 0 and (root / f"x{s}").is_dir()]
    if not factors:
        raise DataError(
            f"benchmark={benchmark}: no {root}/x{scale} folder; set paths.benchmark_dir=<folder holding "
            f"{folder}/x{scale}> (in this repository's dev setup: ../shared/data/sr)"
        )
    return root / f"x{factors[0]}"


def resolve_input(input_path: str | None, benchmark: str | None, benchmark_dir: str | Path, scale: int) -> Path:
    """The folder to evaluate: ``input`` itself, or the ``benchmark`` shortcut's folder."""
    if (input_path is None) == (benchmark is None):
        raise ConfigError("give exactly one of input=<folder of HR (and LR) images> or benchmark=set5|set14")
    if input_path is not None:
        return Path(input_path).expanduser()
    return benchmark_folder(benchmark, benchmark_dir, scale)


def load_upscaler(
    ckpt: str | Path,
    scale: int,
    device: str = "auto",
    precision: Precision = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    tile: int | None = None,
    tile_overlap: int | str = AUTO,
    trust_checkpoint: bool = False,
) -> Upscaler:
    """The checkpoint's SR net as a :class:`Runner` (tiled when ``tile`` is set, see
    :mod:`perceptual.inference.tiling`); refuses other tasks and other scales (the metrics would lie)."""
    net, metadata = load_net(ckpt, trust_checkpoint)
    if metadata.task != "sr":
        raise ConfigError(f"ckpt={ckpt} is a {metadata.task} checkpoint; pass one trained with task=sr")
    if net.scale != scale:
        raise ConfigError(f"ckpt={ckpt} upscales x{net.scale} but scale={scale}; pass scale={net.scale}")
    return build_pipeline(net, PipelineOptions(device, precision, channels_last, compile, tile, tile_overlap))


def match_histogram(image: Tensor, reference: Tensor) -> Tensor:
    """Johnson et al.'s post-processing: give each channel of the SR output the LR input's histogram, so that
    colours and contrast stay those of the input. [3, H, W] and [3, h, w] in [0, 1] -> [3, H, W]."""
    matched = match_histograms(
        image.permute(1, 2, 0).double().numpy(), reference.permute(1, 2, 0).double().numpy(), channel_axis=-1
    )
    return torch.from_numpy(np.ascontiguousarray(matched)).permute(2, 0, 1).to(image.dtype)


@dataclass
class Score:
    image: str
    method: str
    psnr: float
    ssim: float
    sharpness: float  # mean Y gradient relative to HR (perceptual.evaluation.metrics.sharpness_y)
    grid: float  # upsampling-grid strength, ~1 without one (perceptual.evaluation.artefacts.grid_strength)

    def values(self) -> dict[str, float]:
        """The figures by :data:`METRICS` name, in that order."""
        return {metric: getattr(self, metric) for metric in METRICS}


@dataclass
class Results:
    """Per-image scores of each method, their means, and their markdown / CSV / JSON forms."""

    scores: list[Score] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(s.method for s in self.scores))

    def means(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean}}`` over :data:`METRICS`: means of per-image values, as papers report them."""
        return {
            method: {
                metric: float(np.mean([s.values()[metric] for s in self.scores if s.method == method]))
                for metric in METRICS
            }
            for method in self.methods
        }

    def markdown(self) -> str:
        methods = self.methods
        by_image: dict[str, dict[str, Score]] = {}
        for s in self.scores:
            by_image.setdefault(s.image, {})[s.method] = s
        lines = [
            "| image | " + " | ".join(f"{m} {METRIC_TITLES[k]}" for m in methods for k in METRICS) + " |",
            "|---|" + "---|" * len(METRICS) * len(methods),
        ]
        rows = [(name, {m: s.values() for m, s in scores.items()}) for name, scores in by_image.items()]
        rows.append(("**mean**", self.means()))
        for name, values in rows:
            cells = (METRIC_FORMATS[k].format(values[m][k]) for m in methods for k in METRICS)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, folder: Path) -> None:
        """``results.csv`` (one row per image and method) and ``results.json`` (means per method)."""
        with open(folder / "results.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["image", "method", *METRICS])
            writer.writerows((s.image, s.method, *s.values().values()) for s in self.scores)
        (folder / "results.json").write_text(json.dumps(self.means(), indent=2) + "\n")


def _score_pair(
    dataset: SRBenchmark,
    index: int,
    output_dir: Path,
    upscale: Upscaler | None,
    histogram_match: bool,
    report: BatchReport,
) -> list[Score]:
    """Upscale pair ``index`` with each method, write the PNGs and score them; :class:`DataError` when its files
    cannot be read or the outputs cannot be written."""
    sample = dataset.load(index)
    lr, hr, name = sample[LR_KEY], sample[HR_KEY], sample[NAME_KEY]
    outputs = {BICUBIC: imresize(lr, size=tuple(hr.shape[-2:]), uint8=True)}
    if upscale is not None:
        sr = upscale(lr[None])[0].cpu()
        outputs[MODEL] = match_histogram(sr, lr) if histogram_match else sr
    scores = []
    for method, image in outputs.items():
        image = quantize(image)
        report.written.append(save_image(image, output_dir / method / f"{name}.png"))
        psnr, ssim, sharpness = (
            float(metric(image[None], hr[None], dataset.scale)) for metric in (psnr_y, ssim_y, sharpness_y)
        )
        grid = grid_strength(image, dataset.scale)
        scores.append(Score(name, method, psnr, ssim, sharpness, grid))
        log.info("%s %s: %.2f dB, SSIM %.4f, sharpness %.3f, grid %.2f", name, method, psnr, ssim, sharpness, grid)
    return scores


def evaluate(
    dataset: SRBenchmark, output_dir: str | Path, upscale: Upscaler | None = None, histogram_match: bool = False
) -> tuple[Results, BatchReport]:
    """Upscale every LR image of ``dataset`` with bicubic (and ``upscale``), write ``<output_dir>/<method>/<name>.png``
    and the results files, and score them; unreadable pairs are reported and skipped."""
    if histogram_match and upscale is None:
        raise ConfigError("histogram_match=true post-processes the model's output; pass ckpt=<SR checkpoint> too")
    output_dir = Path(output_dir)
    results, report = Results(), BatchReport()
    for index, (_, hr_path, _) in enumerate(dataset.files):
        try:
            results.scores += _score_pair(dataset, index, output_dir, upscale, histogram_match, report)
        except DataError as error:
            report.fail(hr_path, str(error))
    if not results.scores:
        raise DataError(f"no image of {dataset.root} could be evaluated; see the errors above")
    results.write(output_dir)
    return results, report
