"""Train an image transformation network.

python src/train.py                                 # short style-transfer run on built-in images
python src/train.py task=sr scale=8 loss=perceptual
python src/train.py -m loss.terms.style.weight=1,10,100
"""

from omegaconf import DictConfig

from perceptual.cli import entry_point, ignore_irrelevant_training_warnings, report_errors
from perceptual.training import train


@entry_point("train")
def main(cfg: DictConfig) -> float | None:
    ignore_irrelevant_training_warnings()
    with report_errors():
        return train(cfg).get("val/loss")


if __name__ == "__main__":
    main()
