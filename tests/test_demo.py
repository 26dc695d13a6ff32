"""The web demo's functions in process: the nets it offers, what it makes of uploads (sizes, SR's bicubic beside the
net, StyleBank banks and fusion, tiling, videos), its limits, its one-line errors, and the page served by Gradio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose_config, error_lines, run_entry_point, save_net, write_bad_images, write_images
from perceptual.demo import catalogue as catalogue_module
from perceptual.demo.app import Demo, build_app, run_updates, select_updates
from perceptual.demo.browser import free_port
from perceptual.demo.catalogue import Catalogue
from perceptual.demo.render import Controls, Settings, fusion_options
from perceptual.errors import ConfigError
from perceptual.imaging.color import rgb_to_ycbcr
from perceptual.imaging.io import load_image
from perceptual.inference.video import EncoderSettings, VideoReader, VideoWriter
from perceptual.nets.johnson import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet

SIZE = (24, 32)  # (height, width) of the test photos
CPU = Settings(device="cpu", tile=None)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight checkpoints of the three kinds of net the page treats differently."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    return {
        "style": save_net(folder / "style.ckpt", StyleTransferNet(width=4, n_residual=1)),
        "sr": save_net(folder / "sr.ckpt", SuperResolutionNet(scale=2, width=4, n_residual=1), task="sr"),
        "stylebank": save_net(
            folder / "bank.ckpt", StyleBankNet(2, width=4), task="stylebank", styles=("art/wave.jpg", "art/udnie.jpg")
        ),
    }


@pytest.fixture(scope="module")
def demo(checkpoints: dict[str, Path]) -> Demo:
    return Demo(Catalogue([str(path) for path in checkpoints.values()]), CPU)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_images(tmp_path / "upload", 1, size=SIZE)[0]


def name(checkpoints: dict[str, Path], kind: str) -> str:
    return str(checkpoints[kind])


def test_catalogue_offers_the_command_line_checkpoints_first_then_every_zoo_entry(checkpoints) -> None:
    catalogue = Catalogue([str(checkpoints["sr"])])
    zoo = sorted(path.stem for path in (Path(__file__).parents[1] / "zoo").glob("*.pt"))
    assert catalogue.names == [str(checkpoints["sr"]), *(f"zoo:{entry}" for entry in zoo)]
    loaded = catalogue.load(str(checkpoints["sr"]))
    assert (loaded.kind, loaded.bank_names) == ("sr", [])
    assert catalogue.describe(str(checkpoints["sr"])).startswith("x2 super-resolution")
    assert catalogue.describe("zoo:candy").startswith("Johnson et al. style net for candy")


def test_catalogue_knows_each_kind_and_names_stylebank_banks_after_their_styles(demo, checkpoints) -> None:
    views = {kind: demo.select(name(checkpoints, kind)) for kind in checkpoints}
    assert {kind: view.kind for kind, view in views.items()} == {"style": "style", "sr": "sr", "stylebank": "stylebank"}
    assert views["stylebank"].banks == ["wave", "udnie"]
    assert views["style"].about.startswith(f"{checkpoints['style']}: style-transfer net")


def test_nets_load_on_first_use_and_once(monkeypatch: pytest.MonkeyPatch, checkpoints) -> None:
    loads: list[str] = []
    real = catalogue_module.load_net
    monkeypatch.setattr(catalogue_module, "load_net", lambda spec, trust: loads.append(str(spec)) or real(spec, trust))
    catalogue = Catalogue([str(checkpoints["style"])])
    assert loads == [str(checkpoints["style"])]  # command-line checkpoints are read at start (a bad path fails there)
    first = catalogue.load("zoo:sr_x4_pixel")
    assert catalogue.load("zoo:sr_x4_pixel") is first
    assert loads == [str(checkpoints["style"]), "zoo:sr_x4_pixel"]


def test_an_uploaded_checkpoint_is_never_loaded(
    monkeypatch: pytest.MonkeyPatch, demo, tmp_path, checkpoints, photo
) -> None:
    """Only the catalogue's names load: a checkpoint file sent as the net's name or as the photo is refused unread."""
    uploaded = save_net(tmp_path / "evil.ckpt", StyleTransferNet(width=4, n_residual=1))
    loads: list[str] = []
    monkeypatch.setattr(catalogue_module, "load_net", lambda spec, trust: loads.append(str(spec)))
    as_net = demo.run(str(uploaded), str(photo), Controls())
    assert as_net.status.startswith(f"error: '{uploaded}' is not one of the demo's nets; pick one from the list")
    as_photo = demo.run(name(checkpoints, "style"), str(uploaded), Controls())
    assert as_photo.status.startswith("error: cannot read image evil.ckpt")
    assert loads == []
    with pytest.raises(ConfigError, match="not one of the demo's nets"):
        demo.catalogue.load(str(uploaded))


def test_style_result_has_the_photo_size_and_the_style_controls_apply(demo, checkpoints, photo) -> None:
    full = demo.run(name(checkpoints, "style"), str(photo), Controls()).image
    photo_pixels = np.asarray(Image.open(photo))
    assert full.after.shape == full.before.shape == (*SIZE, 3)
    assert np.array_equal(full.before, photo_pixels)
    assert np.array_equal(np.asarray(Image.open(full.file)), full.after)  # the download is the result shown
    faded = demo.run(name(checkpoints, "style"), str(photo), Controls(strength=0.0)).image
    assert np.array_equal(faded.after, photo_pixels)
    kept = demo.run(name(checkpoints, "style"), str(photo), Controls(preserve_color=True)).image
    chroma = [
        rgb_to_ycbcr(torch.from_numpy(image).permute(2, 0, 1).float() / 255)[1:] for image in (kept.after, full.after)
    ]
    photo_chroma = rgb_to_ycbcr(load_image(photo))[1:]
    assert (chroma[0] - photo_chroma).abs().mean() < 0.5 * (chroma[1] - photo_chroma).abs().mean()
    stroke = demo.run(name(checkpoints, "style"), str(photo), Controls(stroke="2")).image
    assert stroke.after.shape == full.after.shape and not np.array_equal(stroke.after, full.after)


def test_super_resolution_shows_bicubic_beside_the_net(demo, checkpoints, photo) -> None:
    outcome = demo.run(name(checkpoints, "sr"), str(photo), Controls(strength=0.3, preserve_color=True))
    result = outcome.image  # the style controls are hidden for SR nets and ignored if sent
    assert result.after.shape == result.before.shape == (2 * SIZE[0], 2 * SIZE[1], 3)
    assert result.before_label == "Bicubic x2"
    pillow = np.asarray(Image.open(photo).resize((2 * SIZE[1], 2 * SIZE[0]), Image.Resampling.BICUBIC), dtype=float)
    assert np.abs(result.before - pillow).mean() < 1.5  # Keys' a = -0.5 cubic both; borders differ
    assert outcome.status == f"{checkpoints['sr']}: 64x48 px"


def test_stylebank_takes_a_bank_or_fusion_weights(demo, checkpoints, photo) -> None:
    def after(**controls) -> np.ndarray:
        return demo.run(name(checkpoints, "stylebank"), str(photo), Controls(**controls)).image.after.astype(int)

    bank0, bank1 = after(bank=0), after(bank=1)
    assert np.abs(bank0 - bank1).mean() > 1
    assert np.array_equal(after(bank=1, weights="1, 0"), bank0)  # the weights win over the bank
    fused = after(weights="0.5 0.5")
    assert 0 < np.abs(fused - bank0).mean() < np.abs(bank1 - bank0).mean()
    bad = {"0.5": "1 fusion weight(s) for 2 banks", "0.7, 0.7": "sum to 1.4", "a, b": "are not numbers"}
    for weights, problem in bad.items():
        status = demo.run(name(checkpoints, "stylebank"), str(photo), Controls(weights=weights)).status
        assert status.startswith("error:") and problem in status


def test_fusion_weights_name_the_banks_they_fuse() -> None:
    assert fusion_options("", 1, 3) == {"bank": 1}
    assert fusion_options("0.25;0 0.75", 0, 3) == {"banks": [0, 2], "weights": [0.25, 0.75]}
    with pytest.raises(ConfigError, match="every fusion weight is 0"):
        fusion_options("0, 0, 0", 0, 3)


@pytest.mark.parametrize("bad", ["notes.jpg", "cut.png", "bomb.png", "empty.png"])
def test_bad_uploads_are_one_line_and_the_demo_goes_on(demo, checkpoints, tmp_path, photo, bad: str) -> None:
    upload = next(path for path in write_bad_images(tmp_path / "bad") if path.name == bad)
    status = demo.run(name(checkpoints, "style"), str(upload), Controls()).status
    assert status.startswith("error: ") and bad in status
    assert "\n" not in status and "Traceback" not in status and str(upload.parent) not in status
    assert demo.run(name(checkpoints, "style"), str(photo), Controls()).image is not None


def test_no_upload_and_unexpected_failures_are_one_line(
    monkeypatch: pytest.MonkeyPatch, demo, checkpoints, photo
) -> None:
    assert (
        demo.run(name(checkpoints, "style"), None, Controls()).status
        == "error: no photo or video yet; upload one first"
    )

    def broken(*args) -> None:
        raise RuntimeError("a\nb")

    monkeypatch.setattr("perceptual.demo.app.render_image", broken)
    status = demo.run(name(checkpoints, "style"), str(photo), Controls()).status
    assert status == "error: unexpected RuntimeError: a (the server's log has the details)"


def test_results_above_the_memory_cap_are_refused_before_decoding(checkpoints, photo) -> None:
    pixels = SIZE[0] * SIZE[1]
    capped = Demo(
        Catalogue([name(checkpoints, "style"), name(checkpoints, "sr")]), Settings("cpu", max_pixels=2 * pixels)
    )
    assert capped.run(name(checkpoints, "style"), str(photo), Controls()).image is not None
    status = capped.run(name(checkpoints, "sr"), str(photo), Controls()).status  # x2: 4 times the photo's pixels
    assert status == (
        f"error: image {photo.name} is 32x24 px, so the result would be 64x48 = 3,072 pixels, above the demo's memory "
        "cap of max_pixels=1,536; downscale it to 22x16 px or less, or restart the demo with a larger "
        "max_pixels=<pixels>"
    )


def test_big_images_run_in_tiles_with_the_untiled_result(checkpoints, tmp_path) -> None:
    big = write_images(tmp_path, 1, size=(96, 112))[0]
    catalogue = Catalogue([name(checkpoints, "sr")])
    net = catalogue.load(name(checkpoints, "sr")).net
    calls = []

    def record(module, inputs, output) -> None:
        if module is net:  # not the copies that measure its receptive field
            calls.append(tuple(inputs[0].shape[-2:]))

    hook = net.register_forward_hook(record)
    try:
        untiled = Demo(catalogue, Settings("cpu", tile=None)).run(name(checkpoints, "sr"), str(big), Controls())
        tiled = Demo(catalogue, Settings("cpu", tile=64)).run(name(checkpoints, "sr"), str(big), Controls())
    finally:
        hook.remove()
    assert calls[0] == (96, 112) and len(calls) > 2 and all(max(shape) <= 64 for shape in calls[1:])
    assert np.abs(tiled.image.after.astype(int) - untiled.image.after).max() <= 1


def write_clip(path: Path, frames: int, size: tuple[int, int] = SIZE) -> Path:
    """A short clip of drifting gradients."""
    image = load_image(write_images(path.parent / "frames", 1, size=(size[0], size[1] + frames))[0])
    writer = VideoWriter(path, 10, size[1], size[0], EncoderSettings())
    for index in range(frames):
        writer.write(image[None, :, :, index : index + size[1]])
    return writer.close()


def test_a_video_comes_back_as_a_video_within_the_frame_cap(demo, checkpoints, tmp_path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", 5)
    outcome = demo.run(name(checkpoints, "style"), str(clip), Controls(strength=0.5))
    assert outcome.status == f"{checkpoints['style']}: 5 frame(s)"
    with VideoReader(outcome.video.file) as reader:
        assert (reader.info.height, reader.info.width, sum(len(batch) for batch in reader.batches(8))) == (*SIZE, 5)
    short = Demo(demo.catalogue, Settings("cpu", max_frames=4))
    status = short.run(name(checkpoints, "style"), str(clip), Controls()).status
    assert status == (
        "error: video clip.mp4 has 5 frames, above the demo's cap of 4 frames; trim it or restart the demo with a "
        "larger video.max_frames=<frames>"
    )


def test_the_page_hides_controls_that_do_not_apply(demo, checkpoints) -> None:
    """(about, strength, preserve colour, stroke, bank, weights, status) as the page updates them."""
    visible = {
        kind: [update.get("visible") for update in select_updates(demo, name(checkpoints, kind))[1:6]]
        for kind in checkpoints
    }
    assert visible == {
        "style": [True, True, True, False, False],
        "sr": [False, False, False, False, False],
        "stylebank": [True, True, True, True, True],
    }
    bank = select_updates(demo, name(checkpoints, "stylebank"))[4]
    assert bank["choices"] == [("0: wave", 0), ("1: udnie", 1)]
    assert select_updates(demo, "elsewhere.ckpt")[-1].startswith("error: 'elsewhere.ckpt' is not one of")


def test_the_page_shows_the_result_and_offers_it_for_download(demo, checkpoints, photo) -> None:
    before, after, before_video, after_video, download, status = run_updates(
        demo, name(checkpoints, "sr"), str(photo), 1.0, False, "none", None, ""
    )
    assert (before["label"], after["label"]) == ("Bicubic x2", str(checkpoints["sr"]))
    assert after["value"].shape == (48, 64, 3) and not before_video["visible"] and not after_video["visible"]
    assert Image.open(download).size == (64, 48) and status.endswith("64x48 px")


def test_the_served_page_runs_a_zoo_net_on_a_photo_and_a_video(photo, tmp_path) -> None:
    """The page as Gradio serves it, driven through its HTTP API (the browser test drives it in Chromium)."""
    from gradio_client import Client, handle_file

    app = build_app(Catalogue(), CPU)
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        controls = (1.0, False, "none", None, "")
        image = client.predict("zoo:candy", handle_file(str(photo)), *controls, api_name="/run")
        clip = handle_file(str(write_clip(tmp_path / "clip.mp4", 3)))
        video = client.predict("zoo:candy", clip, *controls, api_name="/run")
    finally:
        app.close()
    before, after, _, _, download, status = image
    assert status == "zoo:candy: 32x24 px"
    assert Image.open(after["value"]).size == Image.open(before["value"]).size == Image.open(download).size == (32, 24)
    *_, after_video, download, status = video
    assert status == "zoo:candy: 3 frame(s)" and after_video["visible"]
    with VideoReader(download) as reader:
        assert (reader.info.width, reader.info.height) == (32, 24)


def test_demo_command_refuses_a_bad_device_or_checkpoint_in_one_line(tmp_path, capsys: pytest.CaptureFixture) -> None:
    for override, message in [
        ("precision=fp16", "error: precision=fp16 needs a CUDA or MPS device; use precision=bf16 or fp32 on the CPU"),
        (f"ckpt={tmp_path}/missing.ckpt", f"error: checkpoint {tmp_path}/missing.ckpt does not exist"),
    ]:
        cfg = compose_config("demo", "device=cpu", override)
        assert run_entry_point("demo.py", cfg) == 2
        assert error_lines(capsys.readouterr().err)[0].startswith(message)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_demo_runs_on_a_gpu(checkpoints, photo) -> None:
    gpu = Demo(Catalogue([name(checkpoints, "style")]), Settings("cuda", tile=None))
    cpu = Demo(Catalogue([name(checkpoints, "style")]), CPU)
    on_gpu, on_cpu = (demo.run(name(checkpoints, "style"), str(photo), Controls()).image.after for demo in (gpu, cpu))
    assert np.abs(on_gpu.astype(int) - on_cpu).max() <= 2
