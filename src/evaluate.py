"""Score super-resolution on a benchmark: per-image and mean PSNR / SSIM of bicubic and a trained net.

    python src/evaluate.py benchmark=set5 scale=4                      # bicubic baseline only
    python src/evaluate.py benchmark=set14 scale=4 ckpt=outputs/sr/<run>/checkpoints/last.ckpt histogram_match=true
    python src/evaluate.py input=<folder of HR (and LR) images> scale=8 ckpt=...

Prints a markdown table; the run directory gets the upscaled PNGs, results.csv and results.json. Unreadable images
are reported and skipped; the exit code is 1 if any failed.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from perceptual.cli import entry_point, report_errors
from perceptual.data.sr import SRBenchmark
from perceptual.evaluation.benchmark import evaluate, load_upscaler, resolve_input


@entry_point("evaluate")
def main(cfg: DictConfig) -> None:
    output_dir = Path(cfg.paths.output_dir)
    with report_errors():
        dataset = SRBenchmark(
            resolve_input(cfg.input, cfg.benchmark, cfg.paths.benchmark_dir, cfg.scale), cfg.scale, cfg.blur_sigma
        )
        upscale = None
        if cfg.ckpt:
            options = ("device", "precision", "channels_last", "compile", "tile", "tile_overlap", "trust_checkpoint")
            upscale = load_upscaler(cfg.ckpt, cfg.scale, **{key: cfg[key] for key in options})
        results, report = evaluate(dataset, output_dir, upscale, cfg.histogram_match)
    print(results.markdown())
    raise SystemExit(report.summarise(output_dir))


if __name__ == "__main__":
    main()
