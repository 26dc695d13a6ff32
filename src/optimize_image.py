"""Optimise an image against the training criterion (the Gatys et al. baseline).

python src/optimize_image.py content=photo.jpg style=starry.jpg loss=style steps=500 [optimizer=adam init=noise]
"""

import hydra
from omegaconf import DictConfig

from perceptual.cli import report_errors
from perceptual.optimization_baseline import run_optimization_baseline


@hydra.main(version_base="1.3", config_path="../conf", config_name="optimize_image")
def main(cfg: DictConfig) -> None:
    with report_errors():
        run_optimization_baseline(cfg)


if __name__ == "__main__":
    main()
