"""List the model zoo, or add a trained checkpoint to it (zoo/README.md; format in perceptual.zoo).

    python src/zoo.py
    python src/zoo.py action=add name=starry_night ckpt=outputs/style/<run>/checkpoints/last.ckpt \
        description="..." trained_on="..." wall_time="..." hardware="..." \
        "command='python src/train.py ...'" [steps=...] [metrics=results.json] [loss_net_weights=...]

Entries are used wherever a checkpoint is expected: python src/stylize.py ckpt=zoo:starry_night input=... output=...
"""

from typing import Literal

from omegaconf import DictConfig

from perceptual.choices import check_choice
from perceptual.cli import entry_point, report_errors
from perceptual.errors import ConfigError
from perceptual.locations import zoo_folder
from perceptual.zoo import TEXT_FIELDS, format_table, list_entries, read_metrics, save_entry

Action = Literal["list", "add"]


@entry_point("zoo")
def main(cfg: DictConfig) -> None:
    with report_errors():
        if check_choice("action", cfg.action, Action) == "list":
            entries = list_entries()
            print(f"zoo folder {zoo_folder()}, entries: {len(entries)} (use one as ckpt=zoo:<name>)")
            print(format_table(entries))
        else:
            if not cfg.ckpt:
                raise ConfigError("action=add needs ckpt=<run dir>/checkpoints/last.ckpt")
            metadata = {key: cfg[key] for key in (*TEXT_FIELDS, "steps")}
            metadata["metrics"] = read_metrics(cfg.metrics) if cfg.metrics else {}
            print(f"added {save_entry(cfg.ckpt, cfg.name, metadata)}")


if __name__ == "__main__":
    main()
