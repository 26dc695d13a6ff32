"""Why the style recipe collapsed with pretrained features: train one variant, trace it, judge it.

    python experiments/style_quality/recipe_sweep.py NAME STEPS [hydra overrides ...]
    python experiments/style_quality/recipe_sweep.py lr1e-3 100 task.optimizer.lr=1e-3
    python experiments/style_quality/recipe_sweep.py lr1e-4 100 task.optimizer.lr=1e-4

Composes the training config (embedded default data: 64 px crops of built-in photos, starry_night style, HED
features), trains with a plain loop (the same net, criterion and optimiser the task uses), prints a trace of the
loss terms and of the share of output pixels whose tanh input exceeds 3 (saturated: no gradient), then judges the
net on the held-out photos (perceptual.evaluation.quality) and writes ``<NAME>.png`` (photo | output rows) and one
JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import save_image

from perceptual.data.sample import resolve_image
from perceptual.evaluation.quality import StyleJudge
from perceptual.imaging.io import load_image
from perceptual.losses.builder import build_criterion
from perceptual.training import flush_denormals

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
PHOTOS = ("chicago", "amber", "hoovertowernight")
TRACE_STEPS = (1, 5, 10, 20, 40, 70, 100, 150, 200, 300)
SATURATED = 3.0  # |tanh input| above this: tanh' < 0.01


def main(name: str, steps: int, overrides: list[str]) -> None:
    flush_denormals()
    style_file = SHARED / "styles" / "starry_night.jpg"
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"style={style_file}", "loss_net.weights=hed", *overrides])
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    net = instantiate(cfg.model)
    criterion = build_criterion(cfg.loss, cfg.loss_net)
    criterion.set_styles([resolve_image(cfg.style, "style", cfg.task.style_size)])
    optimizer = instantiate(cfg.task.optimizer)(net.parameters())
    scheduler = instantiate(cfg.task.scheduler)(optimizer) if cfg.task.scheduler else None
    tanh_inputs: list[torch.Tensor] = []
    net.body[-1].register_forward_hook(lambda module, args, out: tanh_inputs.append(args[0].detach()))

    trace, step, start = [], 0, time.time()
    while step < steps:
        for batch in datamodule.train_dataloader():
            content = batch["image"]
            tanh_inputs.clear()
            losses = criterion(net(content), target=content)
            optimizer.zero_grad()
            losses.total.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            row = {k: round(v.item(), 4) for k, v in losses.terms.items()}
            row["saturated"] = round((tanh_inputs[0].abs() > SATURATED).float().mean().item(), 3)
            trace.append(row)
            if step in TRACE_STEPS:
                print("trace", name, step, row, flush=True)
            if step >= steps:
                break
    train_seconds = time.time() - start

    judge = StyleJudge(resolve_image(str(style_file), "style", 256))
    net.eval()
    scores, panels = [], []
    with torch.no_grad():
        for photo_name in PHOTOS:
            photo = TF.center_crop(TF.resize(load_image(SHARED / "content" / f"{photo_name}.jpg"), 256), 256)
            output = net(photo[None])[0].clamp(0, 1)
            panels += [photo, output]
            scores.append(judge.score(output, photo).as_dict())
    save_image(torch.stack(panels), Path(__file__).with_name(f"{name}.png"), nrow=2)
    mean = {key: round(sum(s[key] for s in scores) / len(scores), 3) for key in scores[0]}
    last = {key: round(sum(r[key] for r in trace[-10:]) / len(trace[-10:]), 4) for key in trace[-1]}
    print(json.dumps({"name": name, "train_s": round(train_seconds), "first": trace[0], "last10": last, "judge": mean}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
