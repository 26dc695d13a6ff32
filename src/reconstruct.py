"""Reconstruct an image from each loss-network layer (feature loss) and layer set (style loss).

python src/reconstruct.py image=photo.jpg feature_layers=[relu2_2,relu4_3] steps=300
"""

from omegaconf import DictConfig

from perceptual.cli import entry_point, report_errors
from perceptual.optimization.reconstruction import run_reconstruction


@entry_point("reconstruct")
def main(cfg: DictConfig) -> None:
    with report_errors():
        run_reconstruction(cfg)


if __name__ == "__main__":
    main()
