"""Where episodes run (`skills.parallel`): the local executor on several workers and the Ray
executor on a Ray cluster give the JSON of one worker, and their errors are one line.

The Ray cluster is a real one: `ray start --head --block` in a process of its own, with a
token of its own, stopped (and every process it started checked gone) when the tests end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from run_cli import json_error, skillstack

from skillstack.skills.parallel import ExecutorConfig, ordered_map

# The cheapest benchmark run that still has several episodes of different lengths: three
# move_to episodes and the six refusal trials.
BENCH = ("bench", "skills", "--skills", "move_to", "--episodes", "1", "--json")
HEAD_START_S = 90.0  # `ray start --head` on a loaded 2-core machine
HEAD_STOP_S = 30.0  # Ray drains for up to 30 s on SIGTERM


def _sleep_then_pid(index: int, total: int) -> tuple[int, int]:
    time.sleep(0.05 * (total - index))  # the last items finish first
    return index, os.getpid()


def test_ordered_map_keeps_the_order_of_the_items_across_worker_processes():
    calls = []
    items = [(i, 6) for i in range(6)]
    config = ExecutorConfig("local", workers=2)
    out = list(ordered_map(_sleep_then_pid, items, config, progress=lambda *a: calls.append(a)))
    assert [i for i, _ in out] == list(range(6))
    assert len({pid for _, pid in out}) == 2 and os.getpid() not in {pid for _, pid in out}
    assert calls == [(done, 6) for done in range(1, 7)]
    # One worker: in this process.
    assert {
        pid for _, pid in ordered_map(_sleep_then_pid, items[:2], ExecutorConfig("local", 1))
    } == {os.getpid()}


@pytest.fixture(scope="module")
def local_json() -> dict:
    """The benchmark's JSON from one worker (this machine, in the command's own process)."""
    proc = skillstack(*BENCH, "--jobs", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_two_local_workers_give_the_json_of_one(local_json):
    proc = skillstack(*BENCH, "-j", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == local_json
    assert local_json["skills"]["move_to"]["episodes"] == 3
    assert local_json["refusals"]["trials"] == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), its own children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited: only its parent's wait is left


@pytest.fixture(scope="module")
def ray_head():
    """A one-node Ray cluster with two CPUs: ``(address, environment to reach it)``."""
    pytest.importorskip("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--head", f"--port={port}", "--num-cpus=2"]
    command += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    log_path = Path(temp) / "head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [*command, "--block"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started: list[int] = []
    try:
        deadline = time.monotonic() + HEAD_START_S
        while "Ray runtime started" not in log_path.read_text():
            assert head.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "ray start --head took too long"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        started = _children(head.pid)
        head.terminate()  # ray start --block stops what it started
        try:
            head.wait(HEAD_STOP_S)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in started if _alive(p)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the Ray head outlived it: {left}"


def test_a_ray_cluster_gives_the_json_of_one_local_worker(ray_head, local_json):
    address, env = ray_head
    proc = skillstack(*BENCH, "--executor", "ray", "--ray-address", address, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == local_json


def test_a_collection_on_a_ray_cluster_is_the_local_one(ray_head, tmp_path):
    from skillstack.skills.training.collect import collect
    from skillstack.skills.training.dataset_reader import open_dataset

    address, env = ray_head
    args = ["collect", "grasp", "--episodes", "2", "--seed", "4", "--out", str(tmp_path)]
    ray_run = skillstack(*args, "--executor", "ray", "--ray-address", address, env=env)
    assert ray_run.returncode == 0, ray_run.stderr[-2000:]
    local = collect("grasp", episodes=2, seed=4, out_dir=tmp_path / "local", jobs=1)
    on_ray = open_dataset(tmp_path / "grasp.hdf5").episodes(successful_only=False)
    here = open_dataset(local).episodes(successful_only=False)
    assert [e.seed for e in on_ray] == [e.seed for e in here] and len(here) == 2
    for a, b in zip(on_ray, here):
        assert a.success == b.success
        np.testing.assert_array_equal(a.actions, b.actions)
        for key in a.obs:
            np.testing.assert_array_equal(a.obs[key], b.obs[key])


def test_an_unreachable_ray_address_is_one_line_naming_it_and_quick():
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    proc = skillstack(*BENCH, "--executor", "ray", "--ray-address", address, timeout=60)
    assert proc.returncode == 1
    error = json_error(proc)
    assert address in error and "ray start --head" in error
    assert time.monotonic() - start < 30


def test_unknown_executor_and_an_address_without_ray_are_usage_errors():
    proc = skillstack(*BENCH, "--executor", "dask")
    assert proc.returncode == 2
    assert json_error(proc) == "unknown executor 'dask'; executors: local, ray"
    proc = skillstack("bench", "tasks", "--ray-address", "10.0.0.5:6379", "--json")
    assert proc.returncode == 2 and "--executor ray" in json_error(proc)


def test_ray_not_installed_names_the_extra(tmp_path):
    hidden = tmp_path / "ray"
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    proc = skillstack(*BENCH, "--executor", "ray", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1
    assert "pip install 'skillstack[ray]'" in json_error(proc)
