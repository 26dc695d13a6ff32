"""Optional dependencies: imported where they are used, with a one-line error naming the extra that installs them.

The base install (``pip install perceptual``) stylises, upscales, evaluates and trains on images. Video needs
``perceptual[video]`` (PyAV, OpenCV), ONNX export ``perceptual[export]`` (onnx, onnxscript, onnxruntime), the web
demo ``perceptual[demo]`` (Gradio).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from perceptual.errors import ConfigError

# The extra that installs each optional module, and the package name pip knows it by.
EXTRAS = {
    "av": ("video", "av"),
    "cv2": ("video", "opencv-python-headless"),
    "onnx": ("export", "onnx"),
    "onnxscript": ("export", "onnxscript"),
    "onnxruntime": ("export", "onnxruntime"),
    "gradio": ("demo", "gradio"),
    "selenium": ("dev", "selenium"),
}


def install_hint(extra: str) -> str:
    return f"pip install 'perceptual[{extra}]'"


def require(module: str, purpose: str) -> ModuleType:
    """``import module`` (a dotted name: ``av.logging``), or a :class:`ConfigError` in one line saying that
    ``purpose`` needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.partition(".")[0]
        extra, package = EXTRAS.get(top, ("", top))
        fix = install_hint(extra) if extra else f"pip install {package}"
        raise ConfigError(f"{purpose} needs the {package} package, which is not installed: {fix}") from None
