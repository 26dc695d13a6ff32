"""Stylise an image or a folder with a trained checkpoint.

    python src/stylize.py ckpt=outputs/style/<run>/checkpoints/last.ckpt input=photos/ output=styled/

Unreadable inputs are reported and skipped; the exit code is 1 if any input failed.
"""

import hydra
from omegaconf import DictConfig

from perceptual.cli import report_errors
from perceptual.inference import Runner, load_net
from perceptual.stylize import plan_outputs, transform_files


@hydra.main(version_base="1.3", config_path="../conf", config_name="stylize")
def main(cfg: DictConfig) -> None:
    with report_errors():
        pairs = plan_outputs(cfg.input, cfg.output)
        net, _ = load_net(cfg.ckpt)
        runner = Runner(net, cfg.device, cfg.precision, cfg.channels_last, cfg.compile)
        report = transform_files(runner, pairs, cfg.batch_size, cfg.max_size)
    raise SystemExit(report.summarise(cfg.output))


if __name__ == "__main__":
    main()
