"""The demo's page (Gradio): pick a net, upload a photo or a short video, set the style controls, see the result
beside the input and download it.

:class:`Demo` holds what the page's events do, as plain values (tests call it in process); :func:`build_app` lays the
page out and turns those values into component updates. Controls that do not apply to the chosen net are hidden:
strength, colour and stroke for super-resolution nets, the bank and fusion weights for all but StyleBank nets.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceptual.demo.catalogue import Catalogue, Kind
from perceptual.demo.render import (
    Controls,
    ImageResult,
    Settings,
    VideoResult,
    error_line,
    render_image,
    render_video,
)
from perceptual.errors import ConfigError, DataError
from perceptual.imaging.io import IMAGE_EXTENSIONS
from perceptual.inference.video import VIDEO_EXTENSIONS, is_video_file
from perceptual.optional import require

log = logging.getLogger(__name__)

STROKES = ["none", "auto", "0.5", "2"]  # offered; any other factor can be typed
IMAGE_OPTIONS = {"format": "png", "interactive": False, "buttons": ["download", "fullscreen"]}


@dataclass(frozen=True)
class NetView:
    """What the page shows for the chosen net: which controls, its banks, and a line about it."""

    kind: Kind
    about: str
    banks: list[str]


@dataclass(frozen=True)
class Outcome:
    """What a run gives the page: an image or a video result, or neither, and the status line."""

    status: str
    image: ImageResult | None = None
    video: VideoResult | None = None


class Demo:
    """The page's events over a :class:`Catalogue`; results go to a temporary folder (one folder per run) that is
    removed with the demo."""

    def __init__(self, catalogue: Catalogue, settings: Settings) -> None:
        self.catalogue, self.settings = catalogue, settings
        self._results = tempfile.TemporaryDirectory(prefix="perceptual-demo-")
        self.folder = Path(self._results.name)

    def select(self, name: str) -> NetView:
        loaded = self.catalogue.load(name)
        return NetView(loaded.kind, f"{name}: {self.catalogue.describe(name)}", loaded.bank_names)

    def run(self, name: str, upload: str | None, controls: Controls) -> Outcome:
        """Run the net called ``name`` on the uploaded file; any failure is the status line, never an exception."""
        try:
            if not upload:
                raise DataError("no photo or video yet; upload one first")
            loaded = self.catalogue.load(name)
            source = Path(upload)
            folder = Path(tempfile.mkdtemp(dir=self.folder))
            if is_video_file(source):
                video = render_video(loaded, controls, self.settings, source, folder)
                damaged = f"; the input is damaged, {video.failure}" if video.failure else ""
                return Outcome(f"{name}: {video.frames} frame(s){damaged}", video=video)
            image = render_image(loaded, controls, self.settings, source, folder)
            height, width = image.after.shape[:2]
            return Outcome(f"{name}: {width}x{height} px", image=image)
        except Exception as error:  # the page shows one line and the server keeps serving
            return Outcome(f"error: {error_line(error, upload)}")


def select_updates(demo: Demo, name: str) -> tuple[Any, ...]:
    """Updates for (about, strength, preserve colour, stroke, bank, weights, status) when ``name`` is chosen."""
    gr = require("gradio", "the web demo")
    try:
        view = demo.select(name)
    except Exception as error:
        hidden = gr.update(visible=False)
        return gr.update(value=""), hidden, hidden, hidden, hidden, hidden, f"error: {error_line(error)}"
    styled, banked = view.kind != "sr", view.kind == "stylebank"
    banks = [(f"{index}: {bank}", index) for index, bank in enumerate(view.banks)]
    return (
        gr.update(value=view.about),
        gr.update(visible=styled),
        gr.update(visible=styled),
        gr.update(visible=styled),
        gr.update(visible=banked, choices=banks, value=0 if banked else None),
        gr.update(visible=banked, value=""),
        "",
    )


def run_updates(demo: Demo, name: str, upload: str | None, *controls: Any) -> tuple[Any, ...]:
    """Updates for (before, after, before video, after video, download, status) after a run."""
    gr = require("gradio", "the web demo")
    outcome = demo.run(name, upload, Controls(*controls))
    if outcome.video is not None:
        result = str(outcome.video.file)
        hidden = gr.update(visible=False)
        return (
            hidden,
            hidden,
            gr.update(visible=True, value=upload),
            gr.update(visible=True, value=result),
            result,
            outcome.status,
        )
    image = outcome.image
    return (
        gr.update(visible=True, value=image.before if image else None, label=image.before_label if image else "Input"),
        gr.update(visible=True, value=image.after if image else None, label=name if image else "Result"),
        gr.update(visible=False, value=None),
        gr.update(visible=False, value=None),
        str(image.file) if image else None,
        outcome.status,
    )


def build_app(catalogue: Catalogue, settings: Settings) -> Any:
    """The page as a ``gradio.Blocks``, not yet launched."""
    gr = require("gradio", "the web demo")
    demo = Demo(catalogue, settings)
    with gr.Blocks(title="perceptual demo", analytics_enabled=False) as app:
        gr.Markdown("## perceptual: style transfer and super-resolution with perceptual losses")
        with gr.Row():
            model = gr.Dropdown(catalogue.names, value=catalogue.names[0], label="Net", elem_id="model", scale=1)
            about = gr.Markdown(elem_id="about")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label="Photo or short video",
                    file_types=[*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS],
                    type="filepath",
                    elem_id="upload",
                )
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength", elem_id="strength")
                preserve_color = gr.Checkbox(label="Preserve colour", elem_id="preserve-color")
                stroke = gr.Dropdown(
                    STROKES,
                    value="none",
                    allow_custom_value=True,
                    label="Stroke",
                    info="none: as trained; auto: strokes as at the training size; a factor: larger or smaller",
                    elem_id="stroke",
                )
                bank = gr.Dropdown(label="Style bank", visible=False, elem_id="bank")
                weights = gr.Textbox(
                    label="Fusion weights",
                    placeholder="one per bank, summing to 1, e.g. 0.5, 0.5, 0, 0, 0 (blank: the bank above)",
                    visible=False,
                    elem_id="weights",
                )
                run = gr.Button("Run", variant="primary", elem_id="run")
                status = gr.Textbox(label="Status", interactive=False, max_lines=3, elem_id="status")
            with gr.Column(scale=2):
                with gr.Row():
                    before = gr.Image(label="Input", **IMAGE_OPTIONS, elem_id="before")
                    after = gr.Image(label="Result", **IMAGE_OPTIONS, elem_id="after")
                    before_video = gr.Video(label="Input", interactive=False, visible=False, elem_id="before-video")
                    after_video = gr.Video(label="Result", interactive=False, visible=False, elem_id="after-video")
                download = gr.File(label="Download the result", interactive=False, elem_id="download")
        view = [about, strength, preserve_color, stroke, bank, weights, status]
        model.change(lambda name: select_updates(demo, name), model, view, api_name="select")
        app.load(lambda name: select_updates(demo, name), model, view)
        run.click(
            lambda *values: run_updates(demo, *values),
            [model, upload, strength, preserve_color, stroke, bank, weights],
            [before, after, before_video, after_video, download, status],
            api_name="run",
            concurrency_limit=1,  # one run at a time: runs share each net, whose norms the tiler swaps during a call
        )
    return app


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` until interrupted; a port that cannot be had is a one-line error."""
    try:
        app.launch(server_name=host, server_port=port, show_error=False, quiet=False)
    except OSError as error:
        raise ConfigError(f"cannot serve on {host}:{port} ({error}); pass another port=<number>") from None
