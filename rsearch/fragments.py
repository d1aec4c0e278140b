"""A Parquet table that grows by appended fragments, so that a write costs what it adds.

    <name>.parquet    the base: everything up to the last compaction
    <name>.parts/     fragments written since, one per flush, read in name order

A reader reads the base and then every fragment: the last row of a key (a trial id; a trial
and epoch) wins, so a fragment may update a row of the base or of an earlier fragment.
Compaction writes the base anew with everything it read, then deletes the fragments it
folded in; a crash between the two leaves fragments the base already holds, which read back
to the same rows. Every file is written atomically (storage.write_file_atomic): a reader
never sees half of one. Only this module names the files; rsearch.results gives them their
schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pyarrow.fs as pafs

from rsearch import storage

SUFFIX = ".parquet"
PARTS = ".parts"  # <name>.parts/ holds the fragments of <name>.parquet

T = TypeVar("T")
_last_stamp = 0


def parts_dir(exp_dir, name: str) -> str:
    return storage.join(exp_dir, name + PARTS)


def _stamp() -> str:
    """A name that sorts after every fragment written before it, by this or an earlier driver
    (a resumed one): the wall clock in nanoseconds, made strictly increasing."""
    global _last_stamp
    _last_stamp = max(time.time_ns(), _last_stamp + 1)
    return f"{_last_stamp:020d}{SUFFIX}"


def append(exp_dir, name: str, data: bytes) -> str:
    """Write one fragment of table `name` (Parquet bytes); returns its file name."""
    fragment = _stamp()
    storage.write_file_atomic(parts_dir(exp_dir, name), fragment, data)
    return fragment


def fragment_names(fs, root: str, name: str) -> list[str]:
    """The fragments of `name` in folder `root` of filesystem `fs`, in the order they were
    written (temporaries left out)."""
    selector = pafs.FileSelector(f"{root}/{name}{PARTS}", allow_not_found=True)
    names = [info.base_name for info in fs.get_file_info(selector)]
    return sorted(n for n in names if n.endswith(SUFFIX) and not n.startswith("."))


def read(fs, root: str, name: str, read_file: Callable[[str], T | None]):
    """(base, [fragments], their names) of table `name`; `read_file(path)` reads one file
    (None when it is absent). A fragment that a compaction deleted between listing and
    reading means the base is newer than the one read: then everything is read again."""
    for _ in range(3):
        names = fragment_names(fs, root, name)
        base = read_file(f"{root}/{name}{SUFFIX}")
        tables = [read_file(f"{root}/{name}{PARTS}/{n}") for n in names]
        if all(t is not None for t in tables):
            return base, tables, names
    raise FileNotFoundError(f"{root}/{name}{PARTS}: fragments kept vanishing while read")


def delete(fs, root: str, name: str, names: list[str]) -> None:
    """Delete the fragments a compaction folded into the base."""
    for fragment in names:
        try:
            fs.delete_file(f"{root}/{name}{PARTS}/{fragment}")
        except FileNotFoundError:
            pass  # another compaction's
