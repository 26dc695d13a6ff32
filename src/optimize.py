"""Optimise an image against the training criterion (the Gatys et al. baseline).

python src/optimize.py content=photo.jpg style=starry.jpg loss=style steps=500 [optimizer=adam init=noise]
"""

from omegaconf import DictConfig

from perceptual.cli import entry_point, report_errors
from perceptual.optimization import optimize


@entry_point("optimize")
def main(cfg: DictConfig) -> None:
    with report_errors():
        optimize(cfg)


if __name__ == "__main__":
    main()
