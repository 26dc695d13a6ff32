"""Inference: loading a trained net (checkpoint or ``zoo:``), running it (device, precision, tiling, fusion, colour
and strength controls), image and video files, temporal stabilisation, and export to ONNX / TorchScript."""
