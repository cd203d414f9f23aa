"""``occlupose train --devices 2`` on the CPU (DDP, gloo), started the three ways
docs/training.md gives: by Lightning itself, by torchrun, and as srun starts it (one
process per task, with SLURM's variables); killed, resumed, and checked through the
processes' traces (:mod:`occlupose.engine.trace`): disjoint samples per rank,
checkpoints written by rank 0 only, and the resumed run continuing at the step of its
checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from occlupose.engine.config import config_to_dict
from occlupose.engine.trace import TRACE_ENV

IMAGES = 12  # the synthetic_data fixture's training images
STEPS_PER_EPOCH = IMAGES // 2  # one image per process and step, two processes


def _read_trace(folder: Path, rank: int) -> list[dict]:
    path = folder / f"rank{rank}.jsonl"
    if not path.is_file():
        return []
    # A line cut by the kill is not a record.
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(launcher: str, arguments: list[str], trace: Path) -> list[subprocess.Popen]:
    """Start ``occlupose train ARGUMENTS --devices 2`` on two processes, each launcher's way."""
    train = ["-m", "occlupose.cli", "train", *arguments, "--devices", "2"]
    env = {**os.environ, TRACE_ENV: str(trace), "OMP_NUM_THREADS": "1"}
    options = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if launcher == "lightning":  # Lightning starts the second process
        commands = [([sys.executable, *train], env)]
    elif launcher == "torchrun":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        commands = [([*torchrun, "--nproc-per-node", "2", *train], env)]
    else:  # what srun sets in each task of `srun --ntasks-per-node 2` on one node
        slurm = {
            "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NAME": "occlupose",
            "SLURM_NNODES": "1",
            "SLURM_NODEID": "0",
            "SLURM_NODELIST": "127.0.0.1",
            "SLURM_NTASKS": "2",
            "SLURM_NTASKS_PER_NODE": "2",
            "MASTER_PORT": str(_free_port()),
        }
        commands = [
            ([sys.executable, *train], {**env, **slurm, "SLURM_PROCID": r, "SLURM_LOCALID": r})
            for r in ("0", "1")
        ]
    return [
        subprocess.Popen(command, env=environment, **options) for command, environment in commands
    ]


def _descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (torchrun's workers leave its group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (name) state ppid ...": the name may hold spaces, not ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _signal(processes: list[subprocess.Popen] | list[int], signal_number: int) -> list[int]:
    """Send a signal to the processes and every process they started; their ids."""
    started = [p if isinstance(p, int) else p.pid for p in processes]
    pids = started + [d for s in started for d in _descendants(s)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)
    return pids


def _steps(trace: list[dict]) -> list[int]:
    return [e["step"] for e in trace if e["event"] == "batch"]


def _kill(processes: list[subprocess.Popen]) -> None:
    """SIGKILL every process of the run at once, as a crashed node."""
    _signal(processes, signal.SIGKILL)
    for process in processes:
        process.wait()
        process.stdout.close()


@pytest.mark.parametrize("launcher", ["lightning", "torchrun", "srun"])
def test_two_processes_share_the_data_and_resume_after_a_kill(
    tiny_config, synthetic_data, tmp_path, launcher
):
    config = tiny_config(
        synthetic_data,
        "data.batch_size=1",
        "trainer.max_epochs=2",
        "trainer.logger=csv",
        "trainer.checkpoint_every_n_steps=1",
    )
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(config_to_dict(config)))
    out, first, second = tmp_path / "run", tmp_path / "trace1", tmp_path / "trace2"
    arguments = [str(recipe), "--out", str(out)]

    # Killed (SIGKILL, every process) once rank 0 has written the checkpoints of two
    # steps, at a moment when both ranks' traces record the step of the checkpoint.
    processes = _launch(launcher, arguments, first)
    deadline = time.monotonic() + 90
    while True:
        if any(p.poll() is not None for p in processes):
            _kill(processes)
            pytest.fail("a process ended before it was killed")
        assert time.monotonic() < deadline, "no two checkpoints within 90 s"
        if sum(e["event"] == "checkpoint" for e in _read_trace(first, 0)) >= 2:
            frozen = _signal(processes, signal.SIGSTOP)
            saved = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
            step = saved["occlupose"]["pose_steps"]
            if all(step in _steps(_read_trace(first, rank)) for rank in (0, 1)):
                break
            _signal(frozen, signal.SIGCONT)
        time.sleep(0.05)
    _kill(processes)
    steps_at_kill = step
    assert 2 <= steps_at_kill < 2 * STEPS_PER_EPOCH

    processes = _launch(launcher, [*arguments, "--resume"], second)
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), outputs
    assert "resuming from" in outputs[0]

    # Each rank trained on its own half of every epoch, one image per step.
    killed = {rank: _read_trace(first, rank) for rank in (0, 1)}
    resumed = {rank: _read_trace(second, rank) for rank in (0, 1)}
    batches = {
        rank: [e for e in killed[rank] if e["event"] == "batch" and e["step"] <= steps_at_kill]
        + [e for e in resumed[rank] if e["event"] == "batch"]
        for rank in (0, 1)
    }
    for rank in (0, 1):
        # The resumed run starts at the step after its checkpoint: no step twice, none lost.
        assert _steps(resumed[rank])[0] == steps_at_kill + 1
        assert _steps(batches[rank]) == list(range(1, 2 * STEPS_PER_EPOCH + 1)), rank
    for epoch in (0, 1):
        seen = {
            rank: [i for e in batches[rank] if e["epoch"] == epoch for i in e["indices"]]
            for rank in (0, 1)
        }
        assert len(seen[0]) == len(seen[1]) == STEPS_PER_EPOCH
        assert not set(seen[0]) & set(seen[1])  # disjoint
        assert sorted(seen[0] + seen[1]) == list(range(IMAGES))  # together, every image once

    # Only rank 0 wrote checkpoints and logs.
    for trace in (killed, resumed):
        assert any(e["event"] == "checkpoint" for e in trace[0])
        assert not any(e["event"] == "checkpoint" for e in trace[1])
    final = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["occlupose"]["pose_steps"] == 2 * STEPS_PER_EPOCH
    assert final["global_step"] == 2 * STEPS_PER_EPOCH
    # The resumed run's log (the CSV logger starts a new file): each of its steps once.
    header, *rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    step, loss = header.split(",").index("step"), header.split(",").index("train/loss_step")
    logged = [int(row.split(",")[step]) for row in rows if row.split(",")[loss]]
    assert logged == list(range(steps_at_kill, 2 * STEPS_PER_EPOCH))  # Lightning counts from 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "csv"]
    assert not list((out / "checkpoints").glob(".*.tmp"))
