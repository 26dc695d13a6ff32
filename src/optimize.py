"""Optimise an image against the training criterion (the Gatys et al. baseline).

python src/optimize.py content=photo.jpg style=starry.jpg loss=style steps=500 [optimizer=adam init=noise]
"""

import hydra
from omegaconf import DictConfig

from perceptual.cli import report_errors
from perceptual.optimization import optimize


@hydra.main(version_base="1.3", config_path="../conf", config_name="optimize")
def main(cfg: DictConfig) -> None:
    with report_errors():
        optimize(cfg)


if __name__ == "__main__":
    main()
