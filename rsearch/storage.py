"""Where experiments live: a local (or shared) path, or a pyarrow filesystem URI.

A location is kept as text: "/data/exps/quickstart", "~/rsearch_results/quickstart",
"s3://bucket/exps/quickstart?endpoint_override=http://127.0.0.1:9000", "gs://...", "file://...".
pyarrow reads a URI's ?query as filesystem options (endpoint, region, ...), so parts are
joined onto the path before the query, never after it. Ray takes the same pair these
helpers give pyarrow: storage_path=<path>, storage_filesystem=<filesystem>.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from rsearch.errors import UserError

# The results root when neither the space nor --storage names one.
DEFAULT_STORAGE_PATH = "~/rsearch_results"


def is_uri(location) -> bool:
    return "://" in os.fspath(location)


def normalize(location) -> str:
    """A local path made absolute (~ expanded); a URI unchanged."""
    text = os.fspath(location)
    return text if is_uri(text) else os.path.abspath(os.path.expanduser(text))


def _split(location) -> tuple[str, str]:
    """(path part, "?query" or ""): only a URI has a query; a local path may contain "?"."""
    text = normalize(location)
    if not is_uri(text):
        return text, ""
    base, sep, query = text.partition("?")
    return base, sep + query


def join(location, *parts: str) -> str:
    base, query = _split(location)
    return base.rstrip("/") + "".join(f"/{p.strip('/')}" for p in parts) + query


def basename(location) -> str:
    return _split(location)[0].rstrip("/").rsplit("/", 1)[-1]


def parent(location) -> str:
    base, query = _split(location)
    return base.rstrip("/").rsplit("/", 1)[0] + query


def _pafs():
    """pyarrow.fs, imported on first use: `rsearch --help`, cost and train start without
    pyarrow."""
    import pyarrow.fs as pafs

    return pafs


def filesystem(location):
    """(pyarrow filesystem, path inside it)."""
    pafs = _pafs()
    text = normalize(location)
    if is_uri(text):
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), text


# Query keys whose value may be a credential: shown as *** in messages and records.
_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "signature")


def redacted(location) -> str:
    """`location` fit to print: a URI's user:password@ and any query value that may be a
    credential (access_key=, session_token=, ...) become ***; the endpoint and region stay,
    they say which store was meant. A local path is unchanged."""
    text = os.fspath(location)
    if not is_uri(text):
        return text
    base, _, query = text.partition("?")
    scheme, _, rest = base.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    options = []
    for option in query.split("&") if query else []:
        key, sep, _ = option.partition("=")
        secret = sep and any(word in key.lower() for word in _SECRET_WORDS)
        options.append(f"{key}=***" if secret else option)
    return f"{scheme}://{authority}{slash}{path}" + ("?" + "&".join(options) if options else "")


def check_no_credentials(location, where: str) -> None:
    """A URI's user:password@ would be saved with everything that records the location (the
    space, the run's config, checkpoints, model cards): refused, with where the keys go."""
    text = os.fspath(location)
    if is_uri(text) and "@" in text.partition("://")[2].partition("/")[0].partition("?")[0]:
        raise UserError(
            f"{where}: credentials in the URI ({redacted(text)}) would be saved with the results; "
            "expected them in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "GOOGLE_APPLICATION_CREDENTIALS, ...)"
        )


def shown(fs, path: str) -> str:
    """A path inside a pyarrow filesystem, named for messages: the local path, or
    scheme://path (no query: neither endpoint nor credentials)."""
    return path if fs.type_name == "local" else f"{fs.type_name}://{path}"


def missing_bucket(location) -> str | None:
    """The bucket `location` names when its object store has no such bucket; None for a local
    path, a store without buckets, or a bucket that exists."""
    if not is_uri(location) or os.fspath(location).split("://", 1)[0] not in _BUCKET_SCHEMES:
        return None
    fs, path = filesystem(location)
    bucket = path.split("/", 1)[0]
    return bucket if fs.get_file_info(bucket).type == _pafs().FileType.NotFound else None


def exists(location) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != _pafs().FileType.NotFound


def has_entries(location) -> bool:
    """A folder with anything in it (object stores have no empty folders: a prefix with
    objects)."""
    return bool(entry_names(location))


def entry_names(location) -> list[str]:
    """Names of what a folder (or object prefix) holds; [] when it does not exist."""
    pafs = _pafs()
    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    selector = pafs.FileSelector(path, allow_not_found=True)
    return [info.base_name for info in fs.get_file_info(selector)]


def ray_storage(location) -> dict:
    """RunConfig keywords that make Ray Tune / Ray Train write under `location`."""
    if not is_uri(location):
        return {"storage_path": normalize(location)}
    fs, path = filesystem(location)
    return {"storage_path": path, "storage_filesystem": fs}


# Object stores, whose paths start with a bucket (container) that must exist already.
_BUCKET_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss")


def check_writable_folder(path, where: str) -> None:
    """A local folder that exists and takes files, or can be created: else a one-line
    UserError naming `where`, before any work. A file is created and removed to prove it
    (permission bits say nothing to root, nor about a read-only mount)."""
    target = Path(os.path.expanduser(os.fspath(path))).absolute()
    if target.exists() and not target.is_dir():
        raise UserError(f"{where}: {target} is a file; expected a folder")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{where}: {target} lies under the file {existing}; expected a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rsearch-write-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"{where}: cannot write in {existing} ({exc.strerror or type(exc).__name__})"
        ) from None


def check_reachable(location, where: str) -> None:
    """Fail early (before Ray starts, before anything is written) on a store that can't be
    opened or a bucket that does not exist, or a local folder that can't be written."""
    if not is_uri(location):
        check_writable_folder(location, where)
        return
    scheme = os.fspath(location).split("://", 1)[0]
    try:
        fs, path = filesystem(location)
        probe = path.split("/", 1)[0] if scheme in _BUCKET_SCHEMES else path
        kind = fs.get_file_info(probe).type
    except (OSError, ValueError) as exc:  # pyarrow: connection, credentials, malformed URI
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{where}: cannot open {location}: {reason}") from None
    if scheme in _BUCKET_SCHEMES and kind == _pafs().FileType.NotFound:
        raise UserError(
            f"{where}: bucket {probe!r} does not exist (expected an existing bucket in {location})"
        )


def write_file_atomic(exp_dir, name: str, data: bytes) -> str:
    """Write `data` to exp_dir/name: a temporary beside it, then one move over the old file.

    On a local disk the move is rename(2), atomic; on object stores the final object
    appears in one PUT/copy. Returns the path written.
    """
    fs, root = filesystem(exp_dir)
    fs.create_dir(root, recursive=True)
    final = f"{root}/{name}"
    tmp = f"{root}/.{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, final)
    return final


def checkpoint_folder(exp_dir: str, relative, trial: str, flag: str) -> str:
    """Where a results row's checkpoint (a folder relative to the experiment) is; a UserError
    naming `flag` for a record pointing anywhere else (results.parquet is not trusted)."""
    inside = isinstance(relative, str) and not (
        relative.startswith("/") or ".." in relative.split("/")
    )
    folder = join(exp_dir, relative) if inside else ""
    if inside and not is_uri(exp_dir):  # a symlink inside may point anywhere
        root = os.path.realpath(os.path.expanduser(exp_dir))
        inside = os.path.realpath(os.path.expanduser(folder)).startswith(root + os.sep)
    if not inside:
        raise UserError(
            f"{flag}: results.parquet names checkpoint {str(relative)[:200]!r} "
            f"for trial {trial}; expected a folder inside the experiment"
        )
    return folder
