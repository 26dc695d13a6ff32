"""Export a trained net for deployment: ONNX (ONNX Runtime and the runtimes and converters that read ONNX) or
TorchScript (LibTorch, no Python needed).

Every exported graph takes ``image``, float32 RGB [N, 3, H, W] in [0, 1], and returns ``output``, float32 RGB in
[0, 1] of the same size (SR nets: ``scale`` times larger). N, H and W are dynamic: the padding to the net's stride
and the crop back happen inside the graph, so one file serves every image size from the net's smallest side up
(:func:`min_side`; below it the nets' reflection padding would fall back to replicate padding, a branch that
ONNX graphs do not carry; TorchScript keeps it and takes any size). StyleBank graphs take a second input:
``bank`` (int64 [N], the bank of each image) or ``weights`` (float32 [N, num_styles], linear fusion weights
summing to 1); every bank runs and the weights mix them, since a graph cannot skip unused banks.

ONNX goes through ``torch.export`` (the exporter ``torch.onnx.export`` uses by default) with dynamic dimensions.
It traces one example size and does not always refuse what holds only for that size (a branch on whether the input
needed padding was frozen silently), so the nets avoid size-dependent branches
(:func:`~perceptual.nets.blocks.pad_to_multiple`, :func:`~perceptual.nets.blocks.crop`) and :func:`export_net` runs
every written file on another, odd size against the PyTorch net. TorchScript scripts the net
(``torch.jit.script``, deprecated upstream in favour of ``torch.export`` but still the format LibTorch loads).
Both files carry metadata (``perceptual.json``): task, net, smallest side, scale, inputs.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.export import Dim

from perceptual.errors import ConfigError, ExportError
from perceptual.nets.base import TransformNet
from perceptual.nets.blocks import ReflectionPad, check_choice, crop, pad_to_multiple
from perceptual.nets.stylebank import StyleBankNet
from perceptual.optional import require

Format = Literal["onnx", "torchscript"]
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
StyleBankInput = Literal["index", "weights"]
METADATA_KEY = "perceptual.json"
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir")  # log every optimisation pass at INFO
PARITY_TOLERANCE = 2 / 255  # largest acceptable |exported - PyTorch|, in [0, 1] units
EXAMPLE_BATCH = 2  # torch.export treats sizes 0 and 1 as special: trace with 2, run with any N
CHECK_BATCH = 3  # the check runs another batch size (and, for StyleBank, three banks)
LARGEST_MIN_SIDE = 4096


class StyleBankGraph(nn.Module):
    """:meth:`StyleBankNet.forward` with linear fusion weights, in a form that exports: the bank choice is a tensor
    input, ``bank`` int64 [N] (``by_index``) or fusion ``weights`` float [N, num_styles], and every bank runs (the
    net skips banks of zero weight, a data-dependent branch); the weights (one-hot for an index) mix their outputs.
    Holds the net's parts, not the net, so that TorchScript compiles only this forward."""

    def __init__(self, net: StyleBankNet, by_index: bool) -> None:
        super().__init__()
        self.encoder, self.banks, self.decoder = net.encoder, net.banks, net.decoder
        self.downsample = net.downsample
        self.num_styles = net.num_styles
        self.by_index = by_index

    def forward(self, image: Tensor, choice: Tensor) -> Tensor:
        weights = F.one_hot(choice, self.num_styles).to(image.dtype) if self.by_index else choice.to(image.dtype)
        padded, (height, width) = pad_to_multiple(image, self.downsample)
        features = self.encoder(padded)
        styled = torch.stack([bank(features) for bank in self.banks], dim=1)
        mixed = (weights[:, :, None, None, None] * styled).sum(dim=1)
        return crop(self.decoder(mixed), height, width)


@dataclass(frozen=True)
class Graph:
    """What gets exported: the module, its input names, the net's own call on the same inputs (what the export must
    reproduce), and example inputs of any size."""

    module: nn.Module
    input_names: tuple[str, ...]
    reference: Callable[..., Tensor]
    num_styles: int = 0

    def inputs(self, batch: int, height: int, width: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Random inputs: an image batch, and for StyleBank a bank per image or fusion weights."""
        generator = torch.Generator().manual_seed(seed)
        image = torch.rand(batch, 3, height, width, generator=generator)
        if not self.num_styles:
            return (image,)
        if self.input_names[1] == "bank":
            return image, torch.arange(batch) % self.num_styles
        return image, torch.rand(batch, self.num_styles, generator=generator).softmax(dim=1)


def graph_for(net: TransformNet, stylebank: StyleBankInput | None = None) -> Graph:
    """The exportable form of ``net``; StyleBank nets need ``stylebank=index|weights`` (their second input)."""
    if net.capabilities.fusion:
        if stylebank is None:
            raise ConfigError(
                f"this StyleBank checkpoint has {net.num_styles} style banks: pass stylebank=index (a bank per image "
                "as a second input) or stylebank=weights (fusion weights [N, styles])"
            )
        check_choice("stylebank", stylebank, StyleBankInput)
        net.eval()
        if stylebank == "index":
            return Graph(StyleBankGraph(net, by_index=True).eval(), ("image", "bank"), net, net.num_styles)

        def fused(image: Tensor, weights: Tensor) -> Tensor:
            return net(image, weights=weights[:, :, None, None])

        return Graph(StyleBankGraph(net, by_index=False).eval(), ("image", "weights"), fused, net.num_styles)
    if stylebank is not None:
        raise ConfigError(
            f"stylebank={stylebank} applies to StyleBank checkpoints; this one holds a {type(net).__name__}"
        )
    return Graph(net.eval(), ("image",), net)


def _reflects_everywhere(graph: Graph, side: int) -> bool:
    """Whether the graph runs on ``side x side`` with every reflection pad reflecting (none falls back to
    replicate padding); too small for the net at all (e.g. instance norm over a single pixel) counts as no."""
    fallbacks: list[ReflectionPad] = []

    def check(pad: nn.Module, args: tuple[Tensor, ...]) -> None:
        if isinstance(pad, ReflectionPad) and not pad.reflects(args[0]):
            fallbacks.append(pad)

    handles = [module.register_forward_pre_hook(check) for module in graph.module.modules()]
    try:
        with torch.no_grad():
            graph.module(*graph.inputs(1, side, side))
    except (RuntimeError, ValueError):
        return False
    finally:
        for handle in handles:
            handle.remove()
    return not fallbacks


def min_side(graph: Graph) -> int:
    """The smallest height and width the exported graph takes: the smallest side on which every reflection pad
    reflects (padding grows with the input size, so bisection finds it). The nets' first layer is a reflection-padded
    9x9 conv, so this also covers :func:`~perceptual.nets.blocks.pad_to_multiple`'s fallback on tiny inputs."""
    high = 8
    while not _reflects_everywhere(graph, high):
        high *= 2
        if high > LARGEST_MIN_SIDE:
            raise ValueError(f"{type(graph.module).__name__} does not reflect-pad even {LARGEST_MIN_SIDE} px images")
    low = 0  # fails (or is no size at all)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _reflects_everywhere(graph, middle) else (middle, high)
    return high


def _require(*modules: str) -> None:
    """Import ``modules`` or fail in one line naming the extra that installs them."""
    for name in modules:
        require(name, "format=onnx")


@contextmanager
def _quiet(loggers: tuple[str, ...]) -> Iterator[None]:
    """Raise ``loggers`` to WARNING for the duration."""
    previous = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def save_onnx(graph: Graph, path: Path, side: int, metadata: Mapping[str, Any]) -> None:
    """Export through ``torch.export`` with N, H and W dynamic (H, W >= ``side``) and save one self-contained file."""
    _require("onnx", "onnxscript")
    batch, height, width = Dim("batch"), Dim("height", min=side), Dim("width", min=side)
    shapes: list[dict[int, Dim]] = [{0: batch, 2: height, 3: width}, {0: batch}][: len(graph.input_names)]
    with warnings.catch_warnings(), _quiet(EXPORTER_LOGGERS):
        # StyleBank's two inputs share the batch axis, whose name is then given once
        warnings.filterwarnings("ignore", message=r".*axis name: batch will not be used", category=UserWarning)
        onnx_program = torch.onnx.export(
            graph.module,
            graph.inputs(EXAMPLE_BATCH, side + 8, side + 11),
            dynamic_shapes=tuple(shapes),
            input_names=list(graph.input_names),
            output_names=["output"],
            verbose=False,
        )
    onnx_program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
    onnx_program.save(path, external_data=False)


@contextmanager
def _torchscript() -> Iterator[None]:
    """Silence torch.jit's deprecation warnings: TorchScript is deprecated upstream but still what LibTorch loads."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=FutureWarning)
        yield


def save_torchscript(graph: Graph, path: Path, metadata: Mapping[str, Any]) -> None:
    with _torchscript():
        torch.jit.save(torch.jit.script(graph.module), str(path), _extra_files={METADATA_KEY: json.dumps(metadata)})


def load_exported(path: str | Path) -> Callable[..., Tensor]:
    """Run an exported file (by its suffix: ``.onnx`` with ONNX Runtime on the CPU, else TorchScript):
    tensors in, float32 tensor out."""
    path = Path(path)
    if path.suffix == SUFFIXES["onnx"]:
        onnxruntime = require("onnxruntime", "format=onnx")

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [node.name for node in session.get_inputs()]

        def run_onnx(*inputs: Tensor) -> Tensor:
            feed = {name: tensor.detach().cpu().numpy() for name, tensor in zip(names, inputs)}
            return torch.from_numpy(session.run(None, feed)[0])

        return run_onnx
    with _torchscript():
        module = torch.jit.load(str(path), map_location="cpu")

    def run_torchscript(*inputs: Tensor) -> Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run_torchscript


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``perceptual.json`` metadata an exported file carries."""
    path = Path(path)
    if path.suffix == SUFFIXES["onnx"]:
        onnx = require("onnx", "format=onnx")

        props = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props[METADATA_KEY])
    files = {METADATA_KEY: ""}
    with _torchscript():
        torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    return json.loads(files[METADATA_KEY])


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    min_side: int
    input_names: tuple[str, ...]
    max_error: float | None  # largest |exported - PyTorch| on the check images (None: not checked)
    check_shape: tuple[int, ...] | None  # [N, 3, H, W] of the check images

    def summary(self) -> str:
        size_mb = self.path.stat().st_size / 2**20
        line = (
            f"wrote {self.path} ({self.format}, {size_mb:.1f} MB): inputs {', '.join(self.input_names)}; "
            f"N, H, W dynamic, H and W >= {self.min_side}"
        )
        if self.max_error is not None:
            shape = "x".join(map(str, self.check_shape or ()))
            line += f"; max |exported - PyTorch| = {self.max_error:.2e} on a {shape} batch"
        return line


def export_net(
    net: TransformNet,
    fmt: Format,
    output: str | Path,
    stylebank: StyleBankInput | None = None,
    metadata: Mapping[str, Any] | None = None,
    verify: bool = True,
) -> ExportResult:
    """Write ``net`` as ``fmt`` (onnx | torchscript) to ``output``; with ``verify``, run the file on odd-sized images
    (a size and batch other than the ones traced), measure its largest difference from the PyTorch net, and delete
    the file and raise :class:`ExportError` when that exceeds 2/255."""
    check_choice("format", fmt, Format)
    if fmt == "onnx":
        _require("onnx", "onnxscript", *(("onnxruntime",) if verify else ()))
    graph = graph_for(net, stylebank)
    side = min_side(graph)
    path = Path(output).expanduser()
    if path.suffix != SUFFIXES[fmt]:
        raise ConfigError(f"output={output}: a {fmt} file should end in {SUFFIXES[fmt]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        **(metadata or {}),
        "net": type(net).__name__,
        "inputs": list(graph.input_names),
        "min_side": side,
        "scale": net.capabilities.scale,
        "num_styles": graph.num_styles,
    }
    if fmt == "onnx":
        save_onnx(graph, path, side, info)
    else:
        save_torchscript(graph, path, info)
    max_error = check_shape = None
    if verify:
        inputs = graph.inputs(CHECK_BATCH, (side + 5) | 1, (side + 12) | 1, seed=1)
        with torch.no_grad():
            expected = graph.reference(*inputs)
        max_error = (load_exported(path)(*inputs) - expected).abs().max().item()
        check_shape = tuple(inputs[0].shape)
        if max_error > PARITY_TOLERANCE:
            path.unlink()
            raise ExportError(
                f"the exported graph differs from the PyTorch net by up to {max_error:.3g} (> 2/255) on "
                f"{'x'.join(map(str, check_shape))} images, so {path} was deleted; export with format=torchscript"
            )
    return ExportResult(path, fmt, side, graph.input_names, max_error, check_shape)
