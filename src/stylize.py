"""Stylise an image or a folder with a trained checkpoint.

    python src/stylize.py ckpt=outputs/style/<run>/checkpoints/last.ckpt input=photos/ output=styled/

StyleBank checkpoints take a bank or a fusion of banks (see perceptual.fusion):

    python src/stylize.py ckpt=... input=... output=... style=2
    python src/stylize.py ckpt=... input=... output=... styles=[0,1] weights=[0.3,0.7] strength=0.8
    python src/stylize.py ckpt=... input=... output=... styles=[0,1,2] regions=kmeans

Large images can be processed in tiles with the untiled result (see perceptual.tiling):

    python src/stylize.py ckpt=... input=huge.jpg output=styled.jpg tile=1024

Unreadable inputs are reported and skipped; the exit code is 1 if any input failed.
"""

import hydra
from omegaconf import DictConfig

from perceptual.cli import report_errors
from perceptual.fusion import FUSION_OPTIONS, with_fusion
from perceptual.inference import Runner, load_net
from perceptual.stylize import plan_outputs, transform_files
from perceptual.tiling import with_tiling


@hydra.main(version_base="1.3", config_path="../conf", config_name="stylize")
def main(cfg: DictConfig) -> None:
    with report_errors():
        pairs = plan_outputs(cfg.input, cfg.output)
        net, _ = load_net(cfg.ckpt)
        runner = Runner(net, cfg.device, cfg.precision, cfg.channels_last, cfg.compile)
        tiled = with_tiling(runner, net, cfg.tile, cfg.tile_overlap)
        apply = with_fusion(tiled, net, {key: cfg.get(key) for key in FUSION_OPTIONS})
        report = transform_files(apply, pairs, cfg.batch_size, cfg.max_size)
    raise SystemExit(report.summarise(cfg.output))


if __name__ == "__main__":
    main()
