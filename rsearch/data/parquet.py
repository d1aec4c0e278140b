"""Parquet shards: an encoded-image column and an integer label column, read with pyarrow.

Layout (data_dir may be one file or a folder, local or in an object store: any pyarrow
filesystem URI that --storage takes, such as s3://bucket/prefix?endpoint_override=...):
    data.parquet                          -> training split only
    train/ or train.parquet [+ val/|test/|val.parquet|test.parquet]
    a folder of shards named train-*.parquet [+ test-*|val-*|validation-*] (Hugging Face style)
    any other folder of *.parquet          -> all of it is the training split

Only the footers and the label column are read up front.  Images are read one row group
at a time, on demand, through a small per-process cache; the training loader shuffles
within windows of row groups (loader.LOCALITY_WINDOW) so that cache hits.  The image
column may be binary or a struct with a `bytes` field (the Hugging Face Image feature).
Local folders and buckets take the same path: shards are listed and read through pyarrow's
filesystem (a local folder is its LocalFileSystem), each process with a filesystem of its own.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch

from rsearch import storage
from rsearch.data.config import existing_location
from rsearch.data.images import decode_rgb
from rsearch.data.loader import LOCALITY_WINDOW
from rsearch.data.source import ImageSource
from rsearch.errors import UserError
from rsearch.models.registry import MAX_CLASSES

CACHED_GROUPS = 2 * LOCALITY_WINDOW  # row groups kept decoded from Parquet per process
TEST_NAMES = ("val", "test", "validation")


def _open(fs: pafs.FileSystem, path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, filesystem=fs)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(
            f"--data-dir: {storage.shown(fs, path)} is not a readable Parquet file: {exc}"
        ) from None


def _is_bytes(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _check_schema(path: str, schema: pa.Schema, image_column: str, label_column: str) -> None:
    names = schema.names
    for option, column in (
        ("data.image_column", image_column),
        ("data.label_column", label_column),
    ):
        if column not in names:
            raise UserError(
                f"{option}: {path} has no column {column!r} (columns: {', '.join(names)})"
            )
    image_type = schema.field(image_column).type
    if not (
        _is_bytes(image_type)
        or (
            pa.types.is_struct(image_type)
            and image_type.get_field_index("bytes") >= 0
            and _is_bytes(image_type.field("bytes").type)
        )
    ):
        raise UserError(
            f"data.image_column: column {image_column!r} of {path} is {image_type}; expected "
            "encoded image bytes (binary, or a struct with a binary `bytes` field)"
        )
    if not pa.types.is_integer(schema.field(label_column).type):
        raise UserError(
            f"data.label_column: column {label_column!r} of {path} is "
            f"{schema.field(label_column).type}; expected integer class indices"
        )


class ParquetSource(ImageSource):
    """The shards `files` (paths inside the filesystem of `location`, the data_dir)."""

    def __init__(self, location: str, files: list[str], image_column: str, label_column: str):
        self.location, self.files, self.image_column = location, files, image_column
        # Per process (see _filesystem): the filesystem, open files, decoded row groups.
        self._fs, self._pid = None, os.getpid()
        self._handles: dict[int, pq.ParquetFile] = {}
        self._cache: OrderedDict[int, pa.Array] = OrderedDict()
        fs = self._filesystem()
        self.groups: list[tuple[int, int]] = []  # global row-group id -> (file, row group in file)
        labels, group_of_row, offset_in_group = [], [], []
        for file_id, path in enumerate(files):
            pf = _open(fs, path)
            shown = storage.shown(fs, path)
            _check_schema(shown, pf.schema_arrow, image_column, label_column)
            column = pf.read(columns=[label_column]).column(label_column)
            if column.null_count:
                raise UserError(
                    f"data.label_column: {shown} has {column.null_count} rows without a label"
                )
            labels.append(column.to_numpy().astype(np.int64))
            for rg in range(pf.num_row_groups):
                rows = pf.metadata.row_group(rg).num_rows
                group_of_row.append(np.full(rows, len(self.groups), np.int64))
                offset_in_group.append(np.arange(rows, dtype=np.int64))
                self.groups.append((file_id, rg))
        self.labels = np.concatenate(labels) if labels else np.empty(0, np.int64)
        self.group_of_row = np.concatenate(group_of_row) if group_of_row else np.empty(0, np.int64)
        self.offset_in_group = (
            np.concatenate(offset_in_group) if offset_in_group else np.empty(0, np.int64)
        )
        if len(self.labels) and self.labels.min() < 0:
            raise UserError(
                f"data.label_column: labels must be class indices >= 0, found {self.labels.min()}"
            )
        self.num_classes = int(self.labels.max()) + 1 if len(self.labels) else 0

    def _filesystem(self) -> pafs.FileSystem:
        """This process's filesystem. Forked into a DataLoader worker, the source opens its own:
        file handles, and an object store client's pooled connections, are not to be shared."""
        if self._pid != os.getpid():
            self._fs, self._handles, self._cache = None, {}, OrderedDict()
            self._pid = os.getpid()
        if self._fs is None:
            self._fs = storage.filesystem(self.location)[0]
        return self._fs

    def _image_bytes(self, group: int) -> pa.Array:
        """The image bytes of one row group (LRU-cached; handles are per process)."""
        fs = self._filesystem()
        if group in self._cache:
            self._cache.move_to_end(group)
            return self._cache[group]
        file_id, rg = self.groups[group]
        if file_id not in self._handles:
            self._handles[file_id] = _open(fs, self.files[file_id])
        column = self._handles[file_id].read_row_group(rg, columns=[self.image_column]).column(0)
        column = column.combine_chunks()
        if pa.types.is_struct(column.type):
            column = column.field("bytes")
        self._cache[group] = column
        if len(self._cache) > CACHED_GROUPS:
            self._cache.popitem(last=False)
        return self._cache[group]

    def read(self, index: int) -> torch.Tensor:
        group, offset = int(self.group_of_row[index]), int(self.offset_in_group[index])
        value = self._image_bytes(group)[offset]
        file_id, rg = self.groups[group]
        where = (
            f"{storage.shown(self._filesystem(), self.files[file_id])} row group {rg} row {offset}"
        )
        if not value.is_valid:
            raise UserError(f"image {where}: no image bytes (null)")
        return decode_rgb(value.as_buffer(), where)

    def locality(self) -> np.ndarray:
        return self.group_of_row

    def __getstate__(self):
        # Open files, cached columns and the filesystem stay in the process that made them.
        state = dict(self.__dict__)
        state["_handles"], state["_cache"], state["_fs"] = {}, OrderedDict(), None
        return state


def _kind(fs: pafs.FileSystem, path: str) -> pafs.FileType:
    return fs.get_file_info(path).type


def _shards(fs: pafs.FileSystem, path: str) -> list[str]:
    """The .parquet files at or under `path`, in the order of their path components (as
    sorted pathlib Paths: the order, and so the minival split, of earlier local runs)."""
    if _kind(fs, path) == pafs.FileType.File:
        return [path]
    found = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    files = [f.path for f in found if f.type == pafs.FileType.File and f.path.endswith(".parquet")]
    return sorted(files, key=lambda p: p.split("/"))


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def split_files(fs: pafs.FileSystem, root: str) -> tuple[list[str], list[str]]:
    """(training shards, test shards) following the layouts in the module docstring."""
    if _kind(fs, root) == pafs.FileType.File:
        return [root], []
    root = root.rstrip("/")
    for train in (f"{root}/train", f"{root}/train.parquet"):
        if _kind(fs, train) != pafs.FileType.NotFound:
            tests = [f"{root}/{n}{ext}" for ext in ("", ".parquet") for n in TEST_NAMES]
            found = (t for t in tests if _kind(fs, t) != pafs.FileType.NotFound)
            return _shards(fs, train), next((_shards(fs, t) for t in found), [])
    shards = _shards(fs, root)
    train = [p for p in shards if _name(p).startswith("train")]
    test = [p for p in shards if _name(p).startswith(TEST_NAMES)]
    if train and len(train) + len(test) == len(shards):
        return train, test
    return shards, []


def open_parquet(cfg) -> tuple[ParquetSource, ParquetSource | None]:
    fs, path = existing_location(cfg.data_dir, "parquet")
    train_files, test_files = split_files(fs, path)
    root = storage.shown(fs, path)  # named in messages: no endpoint or credentials
    if not train_files:
        raise UserError(f"--data-dir: {root} holds no .parquet files")
    train = ParquetSource(cfg.data_dir, train_files, cfg.image_column, cfg.label_column)
    if len(train) == 0:
        raise UserError(f"--data-dir: the Parquet files under {root} have no rows")
    if (
        train.num_classes > MAX_CLASSES
    ):  # a stray label would build a classifier of that many outputs
        raise UserError(
            f"data.label_column: {root} has label {train.num_classes - 1}; expected labels in "
            f"[0, {MAX_CLASSES - 1:,}] (at most {MAX_CLASSES:,} classes)"
        )
    if train.num_classes < 2:
        raise UserError(
            f"data.label_column: {root} has {train.num_classes} class; "
            "a classifier needs at least 2"
        )
    train.read(0)  # fail now if the image column does not hold images
    test = (
        ParquetSource(cfg.data_dir, test_files, cfg.image_column, cfg.label_column)
        if test_files
        else None
    )
    if test is not None and len(test) and test.num_classes > train.num_classes:
        raise UserError(
            f"data.label_column: the test split has label {test.num_classes - 1}, "
            f"above the training split's largest ({train.num_classes - 1})"
        )
    if test is not None:
        test.num_classes = train.num_classes
    return train, test
