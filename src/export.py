"""Export a trained net (or a zoo entry) for deployment as ONNX or TorchScript.

    python src/export.py ckpt=zoo:starry_night format=onnx output=starry_night.onnx
    python src/export.py ckpt=outputs/sr/<run>/checkpoints/last.ckpt format=torchscript output=sr_x4.pt
    python src/export.py ckpt=<stylebank ckpt> format=onnx output=banks.onnx stylebank=index

The graph takes float32 RGB [N, 3, H, W] in [0, 1] of any size from the net's smallest side up and returns the same
layout (see perceptual.inference.export); StyleBank graphs take the bank index or fusion weights as a second input.
"""

from omegaconf import DictConfig

from perceptual.cli import entry_point, report_errors
from perceptual.inference.export import export_net
from perceptual.inference.runner import load_net


@entry_point("export")
def main(cfg: DictConfig) -> None:
    with report_errors():
        net, metadata = load_net(cfg.ckpt, cfg.trust_checkpoint)
        details = {"source": str(cfg.ckpt), "task": metadata.task, "styles": metadata.styles}
        result = export_net(net, cfg.format, cfg.output, cfg.stylebank, details, cfg.verify)
    print(result.summary())


if __name__ == "__main__":
    main()
