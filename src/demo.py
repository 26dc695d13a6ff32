"""Serve the web demo on this machine: pick a zoo net or a checkpoint named here, upload a photo or a short video,
set the style controls (strength, preserve colour, stroke; bank or fusion weights for StyleBank nets), and see the
result beside the input (super-resolution: beside bicubic upscaling) and download it.

    python src/demo.py                                                  # every zoo net at http://127.0.0.1:7860
    python src/demo.py ckpt=outputs/style/<run>/checkpoints/last.ckpt device=cuda port=8080
    python src/demo.py ckpt=[a.ckpt,b.ckpt] max_pixels=4000000

Needs the demo extra (pip install 'perceptual[demo]'). The page runs the nets of the zoo and of ckpt= only, never an
uploaded file; large images run in tiles (tile=), and results above max_pixels are refused in one line.
"""

from omegaconf import DictConfig, ListConfig

from perceptual.cli import entry_point, report_errors
from perceptual.demo.app import build_app, serve
from perceptual.demo.catalogue import Catalogue
from perceptual.demo.render import Settings


@entry_point("demo")
def main(cfg: DictConfig) -> None:
    with report_errors():
        checkpoints = cfg.ckpt if isinstance(cfg.ckpt, ListConfig) else [cfg.ckpt] if cfg.ckpt else []
        app = build_app(Catalogue(checkpoints, cfg.trust_checkpoint), Settings.from_config(cfg))
        serve(app, cfg.host, cfg.port)


if __name__ == "__main__":
    main()
