"""A run killed at any moment and resumed from ``last.ckpt`` ends with the weights of the run that was never stopped.

Tiny deterministic CPU runs (16 px crops, a width-8 net, random loss-network weights, one thread so that sums are
taken in one order): 8 samples per epoch in batches of 2, so 4 steps an epoch, a checkpoint every step and a
validation every 3. Uninterrupted references run in this process; killed runs are ``src/train.py`` processes.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from conftest import REPO, cli_command, cli_env, compose_config
from perceptual.callbacks import AtomicCheckpointIO, RandomState
from perceptual.data.resumable import EpochSampler, ResumableLoader, SeededSamples
from perceptual.errors import DataError
from perceptual.training import checkpoint_path, train

save = torch.save  # the real one, for the stand-in that dies halfway through a write

TINY = (
    "debug=fast",
    "data.samples_per_epoch=8",
    "data.image_size=16",
    "data.val_image_size=16",
    "model.width=8",
    "trainer.val_check_interval=3",
    "callbacks.model_checkpoint.every_n_train_steps=1",
)
TASKS = {
    "style": ("model.padding=same",),
    "stylebank": ("task=stylebank", "data.styles=[mosaic,coffee]"),  # manual optimisation, a random style per sample
}
STEPS = 12
TOLERANCE = 1e-6


# --- the data order ------------------------------------------------------------------------------------------------


class Draws(Dataset):
    """Sample ``i`` is ``(i, a number drawn from torch's global RNG)``: shows which seed a sample was made with."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([index, torch.rand(()).item()])


def test_sampler_order_is_a_function_of_seed_and_epoch_only() -> None:
    first, again, other_seed = EpochSampler(Draws(), seed=1), EpochSampler(Draws(), seed=1), EpochSampler(Draws(), 2)
    torch.rand(5)  # the global RNG plays no part
    assert list(first) == list(again)
    assert sorted(index for index, _ in first) == list(range(10))
    assert [i for i, _ in first] != [i for i, _ in other_seed]
    first.set_epoch(1)
    assert [i for i, _ in first] != [i for i, _ in again]


def test_each_sample_has_its_own_seed_and_leaves_the_global_rng_alone() -> None:
    samples = SeededSamples(Draws())
    torch.manual_seed(0)
    expected_next = torch.rand(())
    torch.manual_seed(0)
    a = samples[(3, 123)]
    assert torch.rand(()) == expected_next  # the caller's stream went on as if nothing had been drawn
    torch.manual_seed(99)
    assert torch.equal(samples[(3, 123)], a)  # same key, same sample, whatever the global state
    assert not torch.equal(samples[(3, 124)], a)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resumes_mid_epoch_and_after_the_last_batch(num_workers: int) -> None:
    """Batches 3-5 of an epoch come out the same from a loader restored after batch 2; worker count does not matter."""

    def loader() -> ResumableLoader:
        return ResumableLoader(Draws(), EpochSampler(Draws(), seed=7), batch_size=2, num_workers=num_workers)

    reference = loader()
    epoch_0 = list(reference)
    reference.sampler.set_epoch(0)  # what Lightning asks for is ignored: the loader counts epochs itself
    epoch_1 = list(reference)
    assert reference.state_dict() == {"epoch": 1, "batches": 5}
    assert not torch.equal(torch.cat(epoch_0), torch.cat(epoch_1))
    interrupted = loader()
    iterator = iter(interrupted)
    taken = [next(iterator), next(iterator)]
    state = interrupted.state_dict()
    assert state == {"epoch": 0, "batches": 2}
    resumed = loader()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == 3
    assert all(torch.equal(a, b) for a, b in zip(taken + rest, epoch_0, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(list(resumed), epoch_1, strict=True))
    after_last = loader()
    after_last.load_state_dict({"epoch": 0, "batches": 5})
    assert all(torch.equal(a, b) for a, b in zip(list(after_last), epoch_1, strict=True))


# --- random state and checkpoint files -----------------------------------------------------------------------------


def draw() -> tuple[float, float, float]:
    return torch.rand(()).item(), float(np.random.rand()), random.random()


def test_random_state_survives_a_weights_only_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    saved = RandomState().state_dict()
    expected = draw()
    torch.save({"rng": saved}, tmp_path / "state.pt")
    draw(), draw()
    callback = RandomState()
    callback.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["rng"])
    callback.on_train_start(None, None)
    assert draw() == expected


def test_validation_does_not_move_the_training_stream() -> None:
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    expected = draw()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    callback = RandomState()
    callback.on_validation_start(None, None)
    draw()  # what validation draws
    callback.on_validation_end(None, None)
    assert draw() == expected


KILL_DURING_WRITE = """
import io, os, signal, sys
import torch
from perceptual.callbacks import AtomicCheckpointIO

save = torch.save

def die_halfway_through(checkpoint, file):  # stands in for torch.save: half the bytes, then kill -9 on itself
    buffer = io.BytesIO()
    save(checkpoint, buffer)
    file.write(buffer.getvalue()[: buffer.tell() // 2])
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = die_halfway_through
checkpoint = {"state_dict": {"w": torch.zeros(1 << 16)}, "optimizer_states": [], "loops": {}}
AtomicCheckpointIO().save_checkpoint(checkpoint, sys.argv[1])
"""


@pytest.mark.slow  # a new Python process
def test_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    previous = {"state_dict": {"w": torch.ones(3)}, "optimizer_states": [], "loops": {}}
    checkpoint_io.save_checkpoint(previous, path)
    # a fresh process, not fork(): a forked child of a process whose torch thread pools ran can deadlock
    child = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(path)], timeout=120)
    assert child.returncode == -signal.SIGKILL
    [partial] = path.parent.glob(".last.ckpt.*.tmp")  # the half-written file, never renamed
    assert partial.stat().st_size > 1 << 17
    assert torch.equal(checkpoint_io.load_checkpoint(path, weights_only=True)["state_dict"]["w"], torch.ones(3))
    checkpoint_io.save_checkpoint(previous, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # the next save cleared the partial file


def test_unusable_checkpoints_are_one_line_data_errors(tmp_path: Path) -> None:
    resumable = {"state_dict": {"w": torch.ones(1000)}, "optimizer_states": [], "loops": {}}
    torch.save(resumable, tmp_path / "good.ckpt")
    assert checkpoint_path(str(tmp_path / "good.ckpt")) == str(tmp_path / "good.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((tmp_path / "good.ckpt").read_bytes()[:1000])
    with pytest.raises(DataError, match=r"ckpt_path=.*truncated\.ckpt cannot be read \(RuntimeError\); it is corrupt"):
        checkpoint_path(str(truncated))
    torch.save({"state_dict": {}, "net_config": {}}, tmp_path / "zoo.ckpt")
    with pytest.raises(DataError, match=r"zoo\.ckpt holds no training state to resume \(optimizer_states, loops"):
        checkpoint_path(str(tmp_path / "zoo.ckpt"))


# --- whole runs ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One thread, like the ``OMP_NUM_THREADS=1`` CLI runs; the process-wide settings training makes are undone."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # set by seed_everything; removed again afterwards
            patch.delenv(name, raising=False)
        yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


def train_here(output_dir: Path, *overrides: str) -> Path:
    """Train in this process; returns the run's checkpoint folder."""
    train(compose_config("train", *TINY, *overrides, f"paths.output_dir={output_dir}"))
    return output_dir / "checkpoints"


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[key].double() - b[key].double()).abs().max().item() for key in a)


@pytest.fixture(scope="module")
def references(single_thread: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Uninterrupted runs of :data:`STEPS` steps that keep every step's checkpoint."""
    return {
        name: train_here(
            tmp_path_factory.mktemp(name),
            f"trainer.max_steps={STEPS}",
            "callbacks.model_checkpoint.save_top_k=-1",
            *extra,
        )
        for name, extra in TASKS.items()
    }


@pytest.mark.parametrize(
    ("task", "step"),
    [("style", 3), ("style", 4), ("style", 5), ("stylebank", 5)],
    ids=["mid-epoch-before-validation", "end-of-epoch", "mid-epoch", "stylebank-mid-epoch"],
)
def test_resuming_from_any_step_gives_the_uninterrupted_weights(
    references: dict[str, Path], tmp_path: Path, task: str, step: int
) -> None:
    checkpoint = references[task] / f"step_{step:07d}.ckpt"
    resumed = train_here(tmp_path, f"trainer.max_steps={STEPS}", f"ckpt_path={checkpoint}", *TASKS[task])
    assert torch.load(resumed / "last.ckpt", weights_only=True)["global_step"] == STEPS
    assert max_difference(weights(resumed / "last.ckpt"), weights(references[task] / "last.ckpt")) <= TOLERANCE


def test_a_run_stopping_between_periodic_checkpoints_saves_its_last_step(
    references: dict[str, Path], tmp_path: Path
) -> None:
    """Checkpoints every 5 steps, stopped at step 7: ``last.ckpt`` holds step 7, which resumes to the reference."""
    stopped = train_here(
        tmp_path / "stopped", "trainer.max_steps=7", "callbacks.model_checkpoint.every_n_train_steps=5", *TASKS["style"]
    )
    last = stopped / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 7
    assert max_difference(weights(last), weights(references["style"] / "step_0000007.ckpt")) <= TOLERANCE
    resumed = train_here(tmp_path / "resumed", f"trainer.max_steps={STEPS}", f"ckpt_path={last}", *TASKS["style"])
    assert max_difference(weights(resumed / "last.ckpt"), weights(references["style"] / "last.ckpt")) <= TOLERANCE


def test_resuming_in_the_run_directory_overwrites_last_ckpt(tmp_path: Path) -> None:
    """``last.ckpt`` stays the newest state: a resumed run must not write ``last-v1.ckpt`` beside a stale one (the
    first periodic checkpoint records no earlier ``last.ckpt``, so the resumed run took the file for another's)."""
    first = train_here(
        tmp_path, "trainer.max_steps=4", "callbacks.model_checkpoint.every_n_train_steps=4", *TASKS["style"]
    )
    train_here(tmp_path, "trainer.max_steps=6", f"ckpt_path={first / 'last.ckpt'}", *TASKS["style"])
    assert not list(first.glob("last-v*.ckpt"))
    assert torch.load(first / "last.ckpt", weights_only=True)["global_step"] == 6


def test_resuming_twice_at_epoch_ends_gives_the_uninterrupted_weights(
    references: dict[str, Path], tmp_path: Path
) -> None:
    """Resumed at the end of epoch 0, then again from that run's checkpoint at the end of epoch 1 (Lightning's own
    epoch count goes wrong there: the data order must not follow it)."""
    common = (f"trainer.max_steps={STEPS}", *TASKS["style"])
    first = train_here(
        tmp_path / "first",
        *common,
        "callbacks.model_checkpoint.save_top_k=-1",
        f"ckpt_path={references['style'] / 'step_0000004.ckpt'}",
    )
    second = train_here(tmp_path / "second", *common, f"ckpt_path={first / 'step_0000008.ckpt'}")
    assert max_difference(weights(second / "last.ckpt"), weights(references["style"] / "last.ckpt")) <= TOLERANCE


class KilledRun:
    """``src/train.py`` in ``run_dir`` with one thread, started afresh or resumed from ``checkpoints/last.ckpt``."""

    def __init__(self, run_dir: Path, *overrides: str) -> None:
        self.run_dir, self.overrides = run_dir, overrides
        self.last = run_dir / "checkpoints" / "last.ckpt"

    def saved_step(self) -> int:
        return torch.load(self.last, weights_only=True)["global_step"] if self.last.exists() else 0

    def start(self) -> subprocess.Popen:
        resume = [f"ckpt_path={self.last}"] if self.last.exists() else []
        command = cli_command("train.py", *TINY, *self.overrides, *resume, f"hydra.run.dir={self.run_dir}")
        with open(self.run_dir.parent / f"{self.run_dir.name}.log", "a") as log:  # the child keeps its own copy
            return subprocess.Popen(command, cwd=REPO, env=cli_env(OMP_NUM_THREADS="1"), stdout=log, stderr=log)

    def saved_at(self) -> int:
        return self.last.stat().st_mtime_ns if self.last.exists() else 0

    def wait_past(self, process: subprocess.Popen, step: int) -> None:
        """Polls the file's mtime and reads the checkpoint only when it changed: reading it on every poll took longer
        than a tiny step, so a slow machine saw the run several steps late and five kills could use up the run."""
        deadline, seen = time.monotonic() + 300, None
        while process.poll() is None and time.monotonic() < deadline:
            if (saved_at := self.saved_at()) != seen:
                if self.saved_step() > step:
                    return
                seen = saved_at
            time.sleep(0.005)

    def kill_after(self, step: int, step_fraction: float = 0.0) -> int:
        """Start, wait until ``last.ckpt`` is past ``step``, then ``step_fraction`` of the next step's duration
        (measured on this run, so the kill lands mid-run on a fast or a slow machine), ``kill -9``; the saved step."""
        process = self.start()
        self.wait_past(process, step)
        if step_fraction:
            started = time.monotonic()
            self.wait_past(process, self.saved_step())
            time.sleep(step_fraction * (time.monotonic() - started))
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL, f"the run ended before it was killed: see {self.run_dir}.log"
        return self.saved_step()

    def finish(self) -> Path:
        assert self.start().wait(timeout=300) == 0, f"see {self.run_dir}.log"
        return self.last


@pytest.mark.slow  # a training process killed and resumed
def test_kill_9_mid_run_then_resume_gives_the_uninterrupted_weights(
    references: dict[str, Path], tmp_path: Path
) -> None:
    run = KilledRun(tmp_path / "run", *TASKS["style"], f"trainer.max_steps={STEPS}")
    saved = run.kill_after(step=4)
    assert 4 < saved < STEPS
    last = run.finish()
    assert torch.load(last, weights_only=True)["global_step"] == STEPS
    assert max_difference(weights(last), weights(references["style"] / "last.ckpt")) <= TOLERANCE


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_five_kills_at_random_moments_then_resume_give_the_uninterrupted_weights(
    single_thread: None, tmp_path: Path
) -> None:
    steps = 40  # five kills use 2-3 steps each: room to spare on a slow machine
    reference = train_here(tmp_path / "reference", f"trainer.max_steps={steps}", *TASKS["style"]) / "last.ckpt"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    run = KilledRun(tmp_path / "run", *TASKS["style"], f"trainer.max_steps={steps}")
    saved = [run.kill_after(run.saved_step(), step_fraction=rng.uniform(0.01, 1)) for _ in range(5)]
    assert saved == sorted(saved) and saved[-1] < steps, f"seed {seed}: saved steps {saved}"
    last = run.finish()
    assert max_difference(weights(last), weights(reference)) <= TOLERANCE, f"seed {seed}: saved steps {saved}"
