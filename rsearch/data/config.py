"""DataConfig: which images to train on, and the checks that run before anything is read."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from rsearch import storage
from rsearch.bounds import DATA_FIELDS, MAX_MINIVAL_FRACTION, FieldError
from rsearch.bounds import DATA_SOURCES as SOURCES
from rsearch.errors import UserError

__all__ = [
    "MAX_MINIVAL_FRACTION",
    "SOURCES",
    "DataConfig",
    "cache_root",
    "existing_dir",
    "existing_location",
]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
CACHE_ENV = "RSEARCH_CACHE"


@dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"  # "synthetic" | "fashion-mnist" | "imagefolder" | "parquet"
    # fashion-mnist defaults to FASHION_MNIST_DIR; imagefolder/parquet need one
    data_dir: str | None = None
    num_classes: int = 10  # synthetic only (the other sources read it from their labels)
    # synthetic only: ~5 s per epoch for ResNet-RS depth 26 width 0.25 at 32 px on one CPU core.
    train_size: int = 5000
    test_size: int = 1000  # synthetic only
    seed: int = 0  # synthetic rendering AND the minival split
    minival_fraction: float = 0.02  # held out of train, stratified by class, never trained on
    cache_dir: str | None = (
        None  # rendered synthetic sets; default $RSEARCH_CACHE or ~/.cache/rsearch
    )
    image_column: str = "image"  # parquet: encoded image bytes (binary, or a struct with `bytes`)
    label_column: str = "label"  # parquet: integer class index
    crop_min_scale: float = 0.08  # random-resized-crop lower area bound (paper: 8%)
    verify_images: str = "auto"  # imagefolder: "auto" | "decode" | "header" | "none"
    # A final model trains on the minival split too, as the paper trains its final models
    # (rsearch train --from-trial): minival top-1 is then an accuracy on trained images.
    minival_in_train: bool = False
    # imagefolder: where training images are decoded and augmented: "cpu" (loader workers) or
    # "device" (the JPEGs decoded and augmented on the training device: data/device_jpeg.py)
    decode: str = "cpu"

    def __post_init__(self):
        # FieldErrors name the field; the space schema and `rsearch train` name the key or flag.
        for name, bound in DATA_FIELDS.items():
            bound.check(name, getattr(self, name))
        if self.decode == "device" and self.source != "imagefolder":
            expected = f"cpu for source {self.source} (device decodes an imagefolder's JPEGs)"
            raise FieldError("decode", expected, self.decode)

    def replace(self, **changes) -> DataConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def cache_root(cfg: DataConfig) -> Path:
    """Where rendered data lives: the config's cache_dir, else $RSEARCH_CACHE, else
    ~/.cache/rsearch."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return default_cache_root()


def default_cache_root() -> Path:
    """$RSEARCH_CACHE, else ~/.cache/rsearch: this machine's caches (data, latencies)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "rsearch"


def existing_dir(path: str | None, what: str) -> Path:
    """The data directory as a Path, or a UserError saying why it can't be used. A local (or
    shared) folder: these sources list and open files by path (see existing_location)."""
    if not path:
        raise UserError(f"--data-dir: the {what} source needs a data directory")
    if storage.is_uri(path):
        raise UserError(
            f"--data-dir: the {what} source reads a local or shared folder, got "
            f"{storage.redacted(path)}; expected a path every node can reach "
            "(only the parquet source reads from object stores)"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"--data-dir: {p} does not exist (expected the {what} data)")
    if p.is_dir() and not any(p.iterdir()):
        raise UserError(f"--data-dir: {p} is empty (expected the {what} data)")
    return p


def existing_location(location: str | None, what: str):
    """(pyarrow filesystem, path in it) of data that exists: a local path or a URI such as
    s3://bucket/prefix?endpoint_override=... (as --storage takes), else a UserError saying why.
    Checked before anything is read, so that a typo fails before Ray starts."""
    from pyarrow.fs import FileType  # pyarrow loads with the data, not for `rsearch --help`

    if not location:
        raise UserError(f"--data-dir: the {what} source needs a data directory")
    storage.check_no_credentials(location, "--data-dir")
    try:
        fs, path = storage.filesystem(location)
        if storage.is_uri(location) and not path.strip("/"):
            raise UserError(
                f"--data-dir: expected a bucket after {location.partition('://')[0]}://, got "
                f"{storage.redacted(location)}"
            )
        kind = fs.get_file_info(path).type
        bucket = storage.missing_bucket(location) if kind == FileType.NotFound else None
    except (OSError, ValueError) as exc:  # pyarrow: unknown scheme, no connection, credentials
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.replace(str(location), storage.redacted(location))
        raise UserError(f"--data-dir: cannot open {storage.redacted(location)}: {reason}") from None
    if bucket:
        raise UserError(
            f"--data-dir: bucket {bucket!r} does not exist (expected the {what} data in an "
            "existing bucket)"
        )
    if kind == FileType.NotFound:  # an object store has no empty folders: a prefix without objects
        raise UserError(
            f"--data-dir: {storage.shown(fs, path)} does not exist (expected the {what} data)"
        )
    return fs, path
