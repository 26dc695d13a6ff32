"""Training on several machines with Lightning's multi-node DDP, as two 'nodes' on this one: two ``src/train.py``
processes over gloo, each told its node by the variables Lightning's ``LightningEnvironment`` reads (MASTER_ADDR,
MASTER_PORT, NODE_RANK, LOCAL_RANK, WORLD_SIZE), as a cluster's launcher would set them on each machine.

A probe callback (``multinode_probe.Probe``) records in each process the dataset indices it trained on, the
parameters DDP synchronises, the loss network's state and, at the end, the net's weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import REPO, cli_command, cli_env

NODES = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_nodes(root: Path, *overrides: str, timeout: int = 400) -> list[dict[str, Any]]:
    """``src/train.py trainer=ddp trainer.num_nodes=2`` on CPU as node 0 and node 1, each in its own run directory
    (``root/node<rank>``); what each process's probe recorded, with its net's weights under ``"net"``."""
    port = str(free_port())
    foreign = ("RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID")  # would select another environment
    root.mkdir(parents=True, exist_ok=True)
    processes = []
    for node in range(NODES):
        env = {k: v for k, v in cli_env().items() if k not in foreign and not k.startswith("SLURM_")}
        env.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            NODE_RANK=str(node),
            LOCAL_RANK="0",
            WORLD_SIZE=str(NODES),
            OMP_NUM_THREADS="1",
            PYTHONPATH=os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")]),
        )
        command = cli_command(
            "train.py",
            "debug=fast",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.precision=32-true",
            "trainer.devices=1",
            f"trainer.num_nodes={NODES}",
            f"hydra.run.dir={root / f'node{node}'}",
            "+callbacks.probe._target_=multinode_probe.Probe",
            f"+callbacks.probe.out={root / 'probe'}",
            *overrides,
        )
        log = (root / f"node{node}.log").open("w")
        processes.append((subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        codes = [process.wait(timeout=timeout) for process, _ in processes]
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
            log.close()
    assert codes == [0] * NODES, (root / "node0.log").read_text()[-3000:] + (root / "node1.log").read_text()[-3000:]
    records = []
    for rank in range(NODES):
        record = json.loads((root / "probe" / f"rank{rank}.json").read_text())
        record["net"] = torch.load(root / "probe" / f"rank{rank}.pt", weights_only=True)
        records.append(record)
    return records


def check_ddp(records: list[dict[str, Any]], steps: int) -> None:
    """Both processes took part as ranks 0 and 1 of two nodes, trained on different samples and ended with the same
    weights; the loss network stayed out of DDP, a frozen copy (the same one) in each process."""
    assert [(r["global_rank"], r["node_rank"], r["world_size"]) for r in records] == [(0, 0, 2), (1, 1, 2)]
    assert [r["sampler"] for r in records] == [[0, 2], [1, 2]]
    assert all(r["wrapper"] == "DistributedDataParallel" and r["end_step"] == steps for r in records)
    first, second = (set(r["indices"]) for r in records)
    assert first and second and not first & second  # each rank its own share of the data
    for name, value in records[0]["net"].items():
        assert torch.equal(value, records[1]["net"][name]), name
    for record in records:
        assert record["synced"] and all(name.startswith("net.") for name in record["synced"])
        assert record["loss_net_params"] > 0 and not record["loss_net_trainable"] and not record["loss_net_training"]
    assert records[0]["loss_net_checksum"] == records[1]["loss_net_checksum"]


@pytest.mark.slow  # two training processes, twice
@pytest.mark.timeout(900)
def test_two_nodes_train_in_step_write_one_checkpoint_and_resume(tmp_path: Path) -> None:
    keep_all = "callbacks.model_checkpoint.save_top_k=-1"
    run = run_two_nodes(tmp_path / "run", keep_all)  # debug=fast: 4 steps, a checkpoint every 2
    check_ddp(run, steps=4)
    checkpoints = tmp_path / "run" / "node0" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt", "step_0000002.ckpt", "step_0000004.ckpt"]
    assert not (tmp_path / "run" / "node1" / "checkpoints").exists()  # written once, by rank 0
    # Both nodes go on from the step-2 checkpoint (on a cluster: a shared file system) and end where the
    # uninterrupted run did, each with the rest of its own share of the data.
    resumed = run_two_nodes(tmp_path / "resumed", keep_all, f"ckpt_path={checkpoints / 'step_0000002.ckpt'}")
    check_ddp(resumed, steps=4)
    for before, after in zip(run, resumed):
        assert after["start_step"] == 2
        assert after["indices"] == before["indices"][len(before["indices"]) - len(after["indices"]) :]
        assert len(after["indices"]) == len(before["indices"]) // 2
        for name, value in before["net"].items():
            torch.testing.assert_close(after["net"][name], value, rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow  # two training processes
@pytest.mark.timeout(600)
@pytest.mark.parametrize("task", ["sr", "stylebank"])
def test_two_nodes_train_every_task(tmp_path: Path, task: str) -> None:
    """SR, and StyleBank, whose steps leave the banks of absent styles (all banks on auto-encoder steps) without a
    gradient: DDP looks for unused parameters there. 4 steps cover StyleBank's auto-encoder step (the third)."""
    check_ddp(run_two_nodes(tmp_path, f"task={task}"), steps=4)
