"""One driver per experiment: an exclusive lock file in the experiment folder.

Two drivers on one experiment (the same --name started twice, or --resume of a search that
is still running) rewrite each other's results.parquet, and a result is lost. The driver
therefore takes `<experiment>/driver.lock` before Ray starts and holds it for the whole run:

- on a local or shared POSIX path the file is created with O_CREAT | O_EXCL, which is
  atomic (on NFS since v3), and holds the holder's pid, host and start time;
- a lock whose pid no longer runs on this host is stale (a driver killed with SIGKILL) and
  is taken over; a lock held from another host cannot be checked from here, so the error
  names the host and says which file to delete once that driver is known to be gone;
- on an object store (s3://, gs://, ...) pyarrow has no create-if-absent write: the lock
  is checked, then written, then read back to see who won. Two drivers that start within
  the same second may both pass; use a local or shared path when that matters.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

from rsearch import storage
from rsearch.errors import UserError
from rsearch.results import write_file_atomic

LOCK_FILE = "driver.lock"


def _holder() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(holder: dict) -> bool:
    """A lock left by a driver that no longer runs (checkable on this host only)."""
    return holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1)))


def _refuse(exp_dir: str, holder: dict, flag: str) -> UserError:
    return UserError(
        f"{flag}: experiment {exp_dir} is being run by another rsearch driver "
        f"(pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}); "
        f"wait for it to end or stop it, or delete {storage.join(exp_dir, LOCK_FILE)} "
        "if that driver is gone"
    )


class DriverLock:
    """acquire() / release() the experiment's driver lock; usable as a context manager."""

    def __init__(self, exp_dir: str, flag: str = "--name"):
        self.exp_dir, self.flag = exp_dir, flag
        self.path = storage.join(exp_dir, LOCK_FILE)
        self.created_folder = False
        self.held = False

    def check(self) -> None:
        """Refuse early (before any slow work) when a live driver holds the lock."""
        if storage.exists(self.path):
            holder = self._read()
            if not _stale(holder):
                raise _refuse(self.exp_dir, holder, self.flag)

    def acquire(self) -> DriverLock:
        if storage.is_uri(self.exp_dir):
            self._acquire_object()
        else:
            self._acquire_file()
        self.held = True
        return self

    def _acquire_file(self) -> None:
        folder = os.path.expanduser(self.exp_dir)
        self.created_folder = not os.path.isdir(folder)
        os.makedirs(folder, exist_ok=True)
        for _ in range(2):  # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if not _stale(holder):
                    raise _refuse(self.exp_dir, holder, self.flag) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(_holder(), f)
            return
        raise _refuse(self.exp_dir, self._read(), self.flag)

    def _acquire_object(self) -> None:
        if storage.exists(self.path):
            holder = self._read()
            if not _stale(holder):
                raise _refuse(self.exp_dir, holder, self.flag)
        mine = _holder()
        write_file_atomic(self.exp_dir, LOCK_FILE, json.dumps(mine).encode())
        if self._read() != mine:  # another driver wrote after us: it holds the lock
            raise _refuse(self.exp_dir, self._read(), self.flag)

    def _read(self) -> dict:
        fs, path = storage.filesystem(self.path)
        try:
            with fs.open_input_stream(path) as f:
                holder = json.loads(f.read().decode() or "{}")
        except (OSError, ValueError):
            return {}  # half-written by a driver that is starting: treat as held
        return holder if isinstance(holder, dict) else {}

    def release(self) -> None:
        """Remove the lock if this process holds it; the folder too if this lock created it
        and nothing else was written (a run refused before it started leaves nothing)."""
        if not self.held:
            return
        self.held = False
        fs, path = storage.filesystem(self.path)
        with contextlib.suppress(OSError, FileNotFoundError):
            fs.delete_file(path)
        if self.created_folder:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.expanduser(self.exp_dir))  # only if empty

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
