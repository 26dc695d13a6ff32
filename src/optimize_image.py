"""Optimise an image against the training criterion (the Gatys et al. baseline).

python src/optimize_image.py content=photo.jpg style=starry.jpg loss=style steps=500 [optimizer=adam init=noise]
"""

from omegaconf import DictConfig

from perceptual.cli import entry_point, report_errors
from perceptual.optimization.baseline import run_optimization_baseline


@entry_point("optimize_image")
def main(cfg: DictConfig) -> None:
    with report_errors():
        run_optimization_baseline(cfg)


if __name__ == "__main__":
    main()
