"""Stylise an image or a folder with a trained checkpoint.

    python src/stylize.py ckpt=outputs/style/<run>/checkpoints/last.ckpt input=photos/ output=styled/

StyleBank checkpoints take a bank or a fusion of banks (see perceptual.inference.fusion):

    python src/stylize.py ckpt=... input=... output=... bank=2
    python src/stylize.py ckpt=... input=... output=... banks=[0,1] weights=[0.3,0.7]
    python src/stylize.py ckpt=... input=... output=... banks=[0,1,2] regions=kmeans

Any style net keeps the photo's colours with preserve_color=true and fades with strength=0..1:

    python src/stylize.py ckpt=zoo:candy input=... output=... preserve_color=true strength=0.5

Strokes keep their size at any resolution with stroke=auto (the look at the net's training resolution) or a factor
relative to it (see perceptual.inference.stroke):

    python src/stylize.py ckpt=zoo:starry_night input=photo_4000px.jpg output=styled.jpg stroke=auto

Large images can be processed in tiles with the untiled result (see perceptual.inference.tiling):

    python src/stylize.py ckpt=... input=huge.jpg output=styled.jpg tile=1024

Videos (any container FFmpeg reads) come out as videos with the same frame count, frame rate and audio, stabilised
along the input's optical flow unless temporal=none (see perceptual.inference.video_files):

    python src/stylize.py ckpt=zoo:candy input=clip.mp4 output=styled.mp4 video.crf=18

Unreadable inputs are reported and skipped; the exit code is 1 if any input failed.
"""

from omegaconf import DictConfig

from perceptual.cli import entry_point, report_errors
from perceptual.inference.image_files import plan_outputs, transform_files
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.inference.runner import load_net
from perceptual.inference.video import is_video_file
from perceptual.inference.video_files import transform_video, video_settings


@entry_point("stylize")
def main(cfg: DictConfig) -> None:
    with report_errors():
        net, metadata = load_net(cfg.ckpt, cfg.trust_checkpoint)
        apply = build_pipeline(net, PipelineOptions.from_config(cfg), metadata.training_size)
        if is_video_file(cfg.input):
            stabiliser, settings = video_settings(cfg.temporal, cfg.video, net)
            report = transform_video(apply, cfg.input, cfg.output, cfg.batch_size, cfg.max_size, stabiliser, settings)
        else:
            report = transform_files(apply, plan_outputs(cfg.input, cfg.output), cfg.batch_size, cfg.max_size)
    raise SystemExit(report.summarise(cfg.output))


if __name__ == "__main__":
    main()
