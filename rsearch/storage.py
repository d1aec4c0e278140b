"""Where experiments live: a local (or shared) path, or a pyarrow filesystem URI.

A location is kept as text: "/data/exps/quickstart", "~/rsearch_results/quickstart",
"s3://bucket/exps/quickstart?endpoint_override=http://127.0.0.1:9000", "gs://...", "file://...".
pyarrow reads a URI's ?query as filesystem options (endpoint, region, ...), so parts are
joined onto the path before the query, never after it. Ray takes the same pair these
helpers give pyarrow: storage_path=<path>, storage_filesystem=<filesystem>.
"""
from __future__ import annotations

import os

import pyarrow.fs as pafs


def is_uri(location) -> bool:
    return "://" in os.fspath(location)


def normalize(location) -> str:
    """A local path made absolute (~ expanded); a URI unchanged."""
    text = os.fspath(location)
    return text if is_uri(text) else os.path.abspath(os.path.expanduser(text))


def join(location, *parts: str) -> str:
    text = normalize(location)
    base, sep, query = text.partition("?")
    return base.rstrip("/") + "".join(f"/{p.strip('/')}" for p in parts) + sep + query


def basename(location) -> str:
    return normalize(location).partition("?")[0].rstrip("/").rsplit("/", 1)[-1]


def parent(location) -> str:
    base, sep, query = normalize(location).partition("?")
    return base.rstrip("/").rsplit("/", 1)[0] + sep + query


def filesystem(location) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it)."""
    text = normalize(location)
    if is_uri(text):
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), text


def exists(location) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def has_entries(location) -> bool:
    """A folder with anything in it (object stores have no empty folders: a prefix with objects)."""
    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return False
    return bool(fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)))


def ray_storage(location) -> dict:
    """RunConfig keywords that make Ray Tune / Ray Train write under `location`."""
    if not is_uri(location):
        return {"storage_path": normalize(location)}
    fs, path = filesystem(location)
    return {"storage_path": path, "storage_filesystem": fs}


# Object stores, whose paths start with a bucket (container) that must exist already.
_BUCKET_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "az")


def check_reachable(location, where: str) -> None:
    """Fail early (before Ray starts, before anything is written) on a store that can't be
    opened or a bucket that does not exist; local paths are created as needed."""
    from rsearch.errors import UserError

    if not is_uri(location):
        return
    scheme = os.fspath(location).split("://", 1)[0]
    try:
        fs, path = filesystem(location)
        probe = path.split("/", 1)[0] if scheme in _BUCKET_SCHEMES else path
        kind = fs.get_file_info(probe).type
    except (OSError, ValueError) as exc:  # pyarrow: connection, credentials, malformed URI
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{where}: cannot open {location}: {reason}") from None
    if scheme in _BUCKET_SCHEMES and kind == pafs.FileType.NotFound:
        raise UserError(f"{where}: bucket {probe!r} does not exist (expected an existing bucket in {location})")
