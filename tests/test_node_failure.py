"""A worker-node failure on a real multi-node Ray cluster (issue #10).

The test starts a head (no CPUs: no trial and no latency measurement lands there) and two
worker nodes (1 CPU each) on this machine, each node `ray start --block` in its own session,
runs a two-trial search (one trial per worker node) whose checkpoints live on storage every
node reaches (one machine: the local disk), and SIGKILLs every process of the worker node that
runs a trial once that trial has reported (and checkpointed) two of its eight epochs. The
killed trial must resume from its last checkpoint on the surviving node and the search end
with every trial `ok`, nothing lost from results.parquet and curves.parquet.

Ray 2.60 turns `--node-ip-address 127.0.0.1` into the machine's own address (a node must be
reachable from others); the driver, given 127.0.0.1:<port>, attaches to the head's raylet (of
several nodes on one host Ray picks the head), so killing a worker node never kills it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_job_submit import BIN, _ray_processes_of, free_port  # tests/ is on sys.path
from test_tune import _kill_group, _wait_for, smoke_space, spawn_rsearch

from rsearch import metrics as M
from rsearch import results

EPOCHS = 8
WIDTHS = [0.25, 0.375]
KILL_AFTER_EPOCH = 2  # the victim has reported (and checkpointed) at least this many epochs
# The GCS declares a node dead after `failure_threshold` missed health checks (Ray 2.60's
# defaults: every 3 s, 10 s timeout, 5 misses: ~20 s here). A SIGKILLed raylet refuses
# connections at once, so these mark the node dead within ~2 s, before Tune retries the trial
# (with the defaults Tune retried it while the dead node still counted as alive; 1 of 17 such
# runs then failed the "restored once" check below).
FAST_HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def _agent_ports() -> list[str]:
    # Every agent port explicitly: another Ray on this machine (a test session's ray.init, another
    # test's head) may hold the defaults, and nodes of one machine must not share them either.
    flags = (
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    )
    return [arg for flag in flags for arg in (flag, str(free_port()))]


class Node:
    """One `ray start --block` in its own session: the session holds exactly this node's raylet,
    its workers and agents (and, for the head, the GCS), so killing the session kills the node."""

    def __init__(self, name: str, args: list[str], env: dict):
        # A short temp dir: Ray's socket paths must stay under the kernel's 107-byte limit.
        self.name = name
        self.temp_dir = tempfile.mkdtemp(prefix=f"rsn{name[0]}", dir="/tmp")
        self.log = Path(self.temp_dir) / "ray_start.out"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "ray"),
                    "start",
                    "--block",
                    "--node-ip-address",
                    "127.0.0.1",
                    "--temp-dir",
                    self.temp_dir,
                    "--disable-usage-stats",
                    *args,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def session(self) -> int:
        return self.proc.pid  # the session leader's pid is the session id

    def started(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"ray start of the {self.name} exited {self.proc.returncode}:\n"
                f"{self.log.read_text()[-3000:]}"
            )
        return "Ray runtime started" in self.log.read_text()

    def owns(self, pid: int) -> bool:
        try:
            return os.getsid(pid) == self.session
        except ProcessLookupError:
            return False

    def ran(self, pid: int) -> bool:
        """Whether a Ray worker process `pid` ran on this node: Ray names each worker's log
        files, in the node's own session folder, after its pid."""
        logs = Path(self.temp_dir).glob("session_*/logs/*")
        return any(p.name.endswith((f"-{pid}.out", f"_{pid}.log")) for p in logs)

    def kill(self) -> None:
        """SIGKILL every process of this node at once, as the loss of its machine would. Not
        os.killpg of the node's group alone: Ray 2.60's raylet starts each worker in a process
        group of its own (measured: a trial process's pgid is its own pid), so a killpg of the
        `ray start` group kills the raylet and the agents but not the trial; the session holds
        them all.
        The node is frozen first (SIGSTOP until no new process appears), so no process of it sees
        another one die and reacts (a worker noticing its raylet is gone, the raylet a worker)."""
        frozen: set[int] = set()
        while pids := set(_ray_processes_of(self.session)) - frozen:
            for pid in pids:
                _signal(pid, signal.SIGSTOP)
            frozen |= pids
        for pid in frozen:
            _signal(pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def remove(self) -> None:
        self.kill()
        # Nothing of this node may survive: a process that left the session (a daemon) still
        # names the node's unique temp dir on its command line.
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if self.temp_dir.encode() in cmd:
                    _signal(int(entry.name), signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


@pytest.fixture
def ray_cluster(monkeypatch):
    """A head with 0 CPUs and two 1-CPU worker nodes on 127.0.0.1, token authentication on.
    Yields (GCS address, {name: Node}); removes every process it started, even on failure."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    env = dict(os.environ)
    subprocess.run(
        [str(BIN / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True, timeout=60
    )
    port = free_port()
    address = f"127.0.0.1:{port}"
    nodes: dict[str, Node] = {}
    try:
        # The head starts a (minimal) dashboard process even with --include-dashboard false: on a
        # port of its own, not the 8265 another Ray on this machine may hold.
        nodes["head"] = Node(
            "head",
            [
                "--head",
                "--port",
                str(port),
                "--num-cpus",
                "0",
                "--include-dashboard",
                "false",
                "--dashboard-host",
                "127.0.0.1",
                "--dashboard-port",
                str(free_port()),
                "--ray-client-server-port",
                str(free_port()),
                *_agent_ports(),
            ],
            {**env, **FAST_HEALTH_CHECKS},
        )
        _wait_for(nodes["head"].started, 120, "the Ray head")
        for name in ("worker_a", "worker_b"):
            nodes[name] = Node(
                name,
                [
                    "--address",
                    address,
                    "--num-cpus",
                    "1",
                    "--include-log-monitor",
                    "false",
                    *_agent_ports(),
                ],
                env,
            )
        for name in ("worker_a", "worker_b"):
            _wait_for(nodes[name].started, 120, f"the Ray {name} node")
        yield address, nodes
    finally:
        for node in nodes.values():
            node.remove()


def _trial_reports(exp_dir: Path) -> dict[str, list[dict]]:
    """Tune's own record of the results it received: each trial's result.json, one line per
    report, appended across restores (trial id -> reports, in order)."""
    reports = {}
    for path in (exp_dir / "tune" / f"regime_{EPOCHS}").glob("*/result.json"):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                break  # a line being written
        if lines:
            reports[lines[0]["trial_id"]] = lines
    return reports


def _running_victim(exp_dir: Path, workers: list[Node]):
    """(trial id, node) of a trial that has reported KILL_AFTER_EPOCH epochs, has epochs left to
    train, and runs in the session of one of the worker nodes."""
    for trial_id, lines in _trial_reports(exp_dir).items():
        if KILL_AFTER_EPOCH <= lines[-1][M.EPOCH] <= EPOCHS - 3:
            for node in workers:
                if node.owns(lines[-1]["pid"]):
                    return trial_id, node
    return None


@pytest.mark.slow
def test_a_killed_worker_node_s_trial_resumes_from_its_checkpoint_on_the_other_node(
    tmp_path, ray_cluster
):
    address, nodes = ray_cluster
    workers = [nodes["worker_a"], nodes["worker_b"]]
    space = smoke_space(
        tmp_path,
        "nodefail",
        epochs=[EPOCHS],
        scaling={"depth": [26], "width": WIDTHS, "resolution": [32]},
    )
    exp_dir = tmp_path / "nodefail"
    driver = spawn_rsearch(
        "tune", "--space", str(space), "--storage", str(tmp_path), "--address", address, "--quiet"
    )
    try:
        victim_id, victim_node = _wait_for(
            lambda: _running_victim(exp_dir, workers),
            240,
            f"a trial on a worker node with {KILL_AFTER_EPOCH} reported epochs",
        )
        survivor = next(node for node in workers if node is not victim_node)
        before_kill = _trial_reports(exp_dir)[victim_id]
        curves_before = results.read_experiment(exp_dir, allow_empty=True).curves
        # every report so far came from there
        assert all(victim_node.owns(r["pid"]) for r in before_kill)
        killed_at = time.time()
        victim_node.kill()  # its raylet, object store, agents and workers: the trial in mid-epoch
        out, _ = driver.communicate(timeout=300)
        assert driver.returncode == 0, out[-3000:]
        finished_at = time.time()
    finally:
        _kill_group(driver)

    # results.parquet: every planned trial ok, with all its epochs
    exp = results.read_experiment(exp_dir)
    frame = exp.results
    assert exp.meta["status"] == "finished" and exp.meta["planned_trials"] == len(WIDTHS) == len(
        frame
    )
    assert (frame[M.STATUS] == M.STATUS_OK).all(), frame[[M.TRIAL_ID, M.STATUS, M.FAILURE]].to_dict(
        "records"
    )
    assert (frame[M.EPOCHS_DONE] == EPOCHS).all() and frame[M.TEST_TOP1].notna().all()
    # curves.parquet: every trial-epoch once, and each row written before the kill unchanged:
    # the recorder rewrites a (trial, epoch) row whenever that epoch is reported again.
    for trial_id in frame[M.TRIAL_ID]:
        assert sorted(exp.curves[exp.curves[M.TRIAL_ID] == trial_id][M.EPOCH]) == list(
            range(1, EPOCHS + 1)
        )
    kept = curves_before.merge(exp.curves, on=[M.TRIAL_ID, M.EPOCH], suffixes=("", "_after"))
    assert len(kept) == len(curves_before) >= KILL_AFTER_EPOCH
    for column in (M.EPOCH_SECONDS, M.TRAIN_LOSS, M.MINIVAL_LOSS):
        assert (kept[column] == kept[f"{column}_after"]).all(), column

    # Tune's own log of the victim: killed mid-trial, restored once, each epoch reported once.
    reports = _trial_reports(exp_dir)[victim_id]
    epochs = [r[M.EPOCH] for r in reports]
    assert epochs == list(range(1, EPOCHS + 1)), epochs
    restores = [i for i, r in enumerate(reports) if r["iterations_since_restore"] == 1]
    assert len(restores) == 2 and restores[0] == 0, [r["iterations_since_restore"] for r in reports]
    first = reports[restores[1]]  # the restored run's first report
    checkpointed = reports[restores[1] - 1]  # the last report (and checkpoint) before the kill
    assert checkpointed[M.EPOCH] >= before_kill[-1][M.EPOCH] >= KILL_AFTER_EPOCH
    assert first["training_iteration"] == checkpointed["training_iteration"] + 1
    # ... from that checkpoint: the training loop's own clock (wall_s counts from the start of
    # train_epochs in this process) says no epoch was trained before this one after the restore.
    shortest = min(r[M.EPOCH_SECONDS] for r in reports)
    assert first[M.WALL_S] - first[M.EPOCH_SECONDS] < shortest / 2, (
        first[M.WALL_S],
        first[M.EPOCH_SECONDS],
    )
    # ... on the other node: its Ray worker logs name the restored process; the dead node's never.
    after = {r["pid"] for r in reports[restores[1] :]}
    assert all(survivor.ran(pid) and not victim_node.ran(pid) for pid in after), after
    assert all(victim_node.ran(r["pid"]) for r in before_kill)
    # Only that node died: the head and the other worker still run, and the other trial ran once.
    assert nodes["head"].proc.poll() is None and survivor.proc.poll() is None
    (other,) = [
        lines for trial_id, lines in _trial_reports(exp_dir).items() if trial_id != victim_id
    ]
    assert [r["iterations_since_restore"] for r in other] == list(range(1, EPOCHS + 1))
    assert all(survivor.ran(r["pid"]) for r in other)
    print(
        f"\nnode killed after epoch {before_kill[-1][M.EPOCH]} of {victim_id}; trial failure seen "
        f"{_failure_seen(out) - killed_at:.1f} s later; resumed at epoch {first[M.EPOCH]}; "
        f"search done {finished_at - killed_at:.0f} s after the kill"
    )


def _failure_seen(out: str) -> float:
    """Wall time of the driver's first "Trial task failed" log line."""
    for line in out.splitlines():
        if "Trial task failed" in line:
            return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return float("nan")
