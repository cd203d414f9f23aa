"""``occlupose train --devices 2`` on the CPU (DDP, gloo): killed, resumed, and checked
through the processes' traces (:mod:`occlupose.engine.trace`): disjoint samples per
rank, checkpoints written by rank 0 only, and the resumed run continuing at the step of
its checkpoint. The command is the one docs/training.md gives for torchrun and srun,
where the launcher starts the processes instead of Lightning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def _train(recipe: Path, out: Path, trace: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "occlupose.cli", "train", str(recipe), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--devices", "2", *extra],
        env={**os.environ, TRACE_ENV: str(trace), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches both ranks
    )


def test_two_processes_share_the_data_and_resume_after_a_kill(
    tiny_config, synthetic_data, tmp_path
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

    # Killed (SIGKILL, both ranks) once rank 0 has written the checkpoints of two steps.
    process = _train(recipe, out, first)
    deadline = time.monotonic() + 90
    while sum(e["event"] == "checkpoint" for e in _read_trace(first, 0)) < 2:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "no two checkpoints within 90 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()

    saved = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    steps_at_kill = saved["occlupose"]["pose_steps"]
    assert 2 <= steps_at_kill < 2 * STEPS_PER_EPOCH

    process = _train(recipe, out, second, "--resume")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "resuming from" in output

    # Each rank trained on its own half of every epoch, one image per step.
    killed = {rank: _read_trace(first, rank) for rank in (0, 1)}
    resumed = {rank: _read_trace(second, rank) for rank in (0, 1)}
    batches = {
        rank: [e for e in killed[rank] if e["event"] == "batch" and e["step"] <= steps_at_kill]
        + [e for e in resumed[rank] if e["event"] == "batch"]
        for rank in (0, 1)
    }
    for rank in (0, 1):
        steps = [e["step"] for e in batches[rank]]
        # The resumed run starts at the step after its checkpoint: no step twice, none lost.
        assert steps == list(range(1, 2 * STEPS_PER_EPOCH + 1)), (rank, steps)
        resumed_steps = [e["step"] for e in resumed[rank] if e["event"] == "batch"]
        assert resumed_steps[0] == steps_at_kill + 1
    for epoch in (0, 1):
        seen = {
            rank: [i for e in batches[rank] if e["epoch"] == epoch for i in e["indices"]]
            for rank in (0, 1)
        }
        assert len(seen[0]) == len(seen[1]) == STEPS_PER_EPOCH
        assert not set(seen[0]) & set(seen[1])  # disjoint
        assert sorted(seen[0] + seen[1]) == list(range(IMAGES))  # together, every image once

    # Only rank 0 wrote checkpoints; the logs have each step once.
    for trace in (killed, resumed):
        assert any(e["event"] == "checkpoint" for e in trace[0])
        assert not any(e["event"] == "checkpoint" for e in trace[1])
    final = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["occlupose"]["pose_steps"] == 2 * STEPS_PER_EPOCH
    assert final["global_step"] == 2 * STEPS_PER_EPOCH
    header, *rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    step_column = header.split(",").index("step")
    logged = [row.split(",")[step_column] for row in rows if row.split(",")[2:3] != [""]]
    assert len(logged) == len(set(logged))
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "csv"]
    assert not list((out / "checkpoints").glob(".*.tmp"))
