"""One driver per experiment: the lock file, and two real drivers racing for one experiment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from test_tune import _kill_group, _wait_for, rsearch, smoke_space, start_driver

from rsearch import results
from rsearch.errors import UserError
from rsearch.tune.lock import LOCK_FILE, DriverLock


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process now


def test_the_lock_is_exclusive_names_its_holder_and_is_released(tmp_path):
    exp = str(tmp_path / "exp")
    first = DriverLock(exp).acquire()
    holder = json.loads((tmp_path / "exp" / LOCK_FILE).read_text())
    assert (
        holder["pid"] == os.getpid()
        and holder["host"] == socket.gethostname()
        and holder["started"]
    )
    with pytest.raises(
        UserError,
        match=rf"^--name: experiment .* is being run by another rsearch driver "
        rf"\(pid {os.getpid()} on {socket.gethostname()}",
    ):
        DriverLock(exp).acquire()
    with pytest.raises(UserError, match="^--resume: "):
        DriverLock(exp, "--resume").check()
    first.release()
    assert not (tmp_path / "exp").exists()  # created by the lock, nothing else written: removed
    DriverLock(exp).acquire().release()


def test_a_stale_lock_of_a_killed_driver_is_taken_over(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(
        json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "started": "x"})
    )
    lock = DriverLock(str(folder)).acquire()
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert (
        folder.exists() and not (folder / LOCK_FILE).exists()
    )  # the folder was there before: kept


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(
        json.dumps({"pid": dead_pid(), "host": "other-node", "started": "x"})
    )
    with pytest.raises(
        UserError, match="on other-node.*delete .*driver.lock if that driver is gone"
    ):
        DriverLock(str(folder)).acquire()


def start(space, storage):
    return start_driver(
        space, storage, merge_output=False
    )  # stderr apart: the refusal is checked alone


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.0, 3.0])
def test_of_two_drivers_started_together_exactly_one_is_refused(tmp_path, delay_s):
    # Before: both ran (the "already exists" check came before the folder was created) and
    # results.parquet ended with one of the two trials.
    space = smoke_space(
        tmp_path, "race", scaling={"depth": [26], "width": [0.25], "resolution": [32]}
    )
    a = start(space, tmp_path)
    time.sleep(delay_s)
    b = start(space, tmp_path)
    try:
        outs = [p.communicate(timeout=600) for p in (a, b)]
    finally:
        _kill_group(a)
        _kill_group(b)
    codes = sorted((a.returncode, b.returncode))
    assert codes == [0, 2], outs
    refused = outs[[a.returncode, b.returncode].index(2)][1].strip().splitlines()
    assert len(refused) == 1 and "is being run by another rsearch driver (pid" in refused[0], (
        refused
    )
    exp = results.read_experiment(tmp_path / "race")
    assert len(exp.results) == 1 and exp.meta["status"] == "finished"
    assert not (tmp_path / "race" / LOCK_FILE).exists()  # released at the end


@pytest.mark.slow
def test_resume_of_a_running_experiment_is_refused(tmp_path):
    space = smoke_space(
        tmp_path, "busy", epochs=[3], scaling={"depth": [26], "width": [0.25], "resolution": [32]}
    )
    exp_dir = tmp_path / "busy"
    driver = start(space, tmp_path)
    try:
        _wait_for(
            lambda: (exp_dir / results.EXPERIMENT_FILE).exists(), 300, "the running experiment"
        )
        proc = rsearch("tune", "--resume", str(exp_dir))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        running = f"is being run by another rsearch driver (pid {driver.pid}"
        assert f"--resume: experiment {exp_dir} {running}" in lines[0]
        driver.communicate(timeout=600)
    finally:
        _kill_group(driver)
    assert driver.returncode == 0
    assert results.read_experiment(exp_dir).meta["status"] == "finished"
