"""`ray job submit` of the smoke search to a real Ray head started by the test on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rsearch import metrics as M
from rsearch import results

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_processes_of(session: int) -> list[int]:
    """Every process in the head's session (ray start forks raylet, GCS, dashboard, agents)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


@pytest.fixture
def ray_head():
    """`ray start --head` bound to 127.0.0.1 with token authentication (Ray 2.60's default)."""
    port, dash = free_port(), free_port()
    # Every port of the head's agents explicitly: another local Ray (the session's ray.init)
    # already holds the default dashboard-agent port, and a head whose agent cannot bind
    # answers job submissions with "No available agent".
    agent_ports = [
        "--dashboard-agent-listen-port",
        str(free_port()),
        "--dashboard-agent-grpc-port",
        str(free_port()),
        "--runtime-env-agent-port",
        str(free_port()),
        "--metrics-export-port",
        str(free_port()),
        "--ray-client-server-port",
        str(free_port()),
    ]
    # A short temp dir: Ray's socket paths must stay under the kernel's 107-byte limit.
    temp_dir = tempfile.mkdtemp(prefix="rsj", dir="/tmp")
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: Ray 2.60 keeps --node-ip-address 127.0.0.1 (else it
    # swaps in the external address and binds there): the head really is on loopback.
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    env.pop("RAY_ADDRESS", None)
    subprocess.run(
        [str(BIN / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True, timeout=60
    )
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dash),
            "--num-cpus",
            "2",
            "--temp-dir",
            temp_dir,
            *agent_ports,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the Jobs API answers once the dashboard is up
            probe = subprocess.run(
                [str(BIN / "ray"), "job", "list", "--address", address],
                env=env,
                capture_output=True,
                timeout=60,
            )
            if probe.returncode == 0:
                break
            time.sleep(2)
        else:
            raise AssertionError("the Ray head's Jobs API did not come up")
        yield address, env
    finally:
        # SIGTERM to `ray start --block` does not stop a head promptly: kill what we started,
        # by its session (process group), then make sure nothing of it is left.
        for pid in _ray_processes_of(head.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_ray_job_submit_runs_the_smoke_search(ray_head, tmp_path):
    address, env = ray_head
    storage = tmp_path / "store"
    command = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        address,
        "--working-dir",
        str(ROOT),
        "--",
        "rsearch",
        "tune",
        "--space",
        "search_spaces/smoke.yaml",
        "--storage",
        str(storage),
        "--quiet",
    ]
    for _ in range(30):  # the dashboard answers before its job agent has registered
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if "No available agent to submit job" not in proc.stdout + proc.stderr:
            break
        time.sleep(2)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "succeeded" in proc.stdout + proc.stderr
    exp = results.read_experiment(storage / "smoke")
    assert exp.meta["status"] == "finished"
    assert sorted(exp.results[M.STATUS]) == [M.STATUS_INFEASIBLE, M.STATUS_OK, M.STATUS_OK]


def test_ray_cli_is_installed():
    assert shutil.which("ray", path=str(BIN)), "ray[default] must provide the ray CLI"
