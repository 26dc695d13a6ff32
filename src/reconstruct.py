"""Reconstruct an image from each loss-network layer (feature loss) and layer set (style loss).

python src/reconstruct.py image=photo.jpg feature_layers=[relu2_2,relu4_3] steps=300
"""

import hydra
from omegaconf import DictConfig

from perceptual.cli import report_errors
from perceptual.reconstruction import run_reconstruction


@hydra.main(version_base="1.3", config_path="../conf", config_name="reconstruct")
def main(cfg: DictConfig) -> None:
    with report_errors():
        run_reconstruction(cfg)


if __name__ == "__main__":
    main()
