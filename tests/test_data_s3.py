"""Parquet training data in an object store: `data.dir` / `--data-dir` as a pyarrow filesystem URI
(s3://bucket/prefix?endpoint_override=...), listed and read through pyarrow's S3 filesystem
against a real S3 API server (moto's, on 127.0.0.1: the s3_root fixture). No Ray."""

from __future__ import annotations

import json

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import S3_BUCKET, run_cli
from test_data_parquet import write_shard
from test_tune import SMOKE

from rsearch import storage
from rsearch.data import DataConfig
from rsearch.data.load import data_shape
from rsearch.errors import UserError
from rsearch.space.schema import data_config_kwargs, parse_data

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

# A tiny model trained a few steps: 2 epochs of 2 steps (batch 16) on 48 images of 3 classes.
TINY_RUN = (
    "train --depth 26 --width 0.25 --resolution 32 --epochs 2 --batch-size 16 --deterministic"
).split()
EPOCH_COLUMNS = ("epoch", "train_loss", "minival_loss", "minival_top1", "lr")


def shards(folder):
    """Hugging-Face-style shards: two training files and a test file, row groups of 5 rows."""
    write_shard(folder / "train-00000-of-00002.parquet", range(0, 24))
    write_shard(folder / "train-00001-of-00002.parquet", range(24, 48))
    write_shard(folder / "test-00000-of-00001.parquet", range(200, 212))
    return folder


def uploaded(local, s3_root: str, prefix: str = "shards") -> str:
    """The files of the local folder copied to s3_root/prefix; that location's URI."""
    location = storage.join(s3_root, prefix)
    fs, path = storage.filesystem(location)
    pafs.copy_files(str(local), path, destination_filesystem=fs)
    return location


def train(capsys, data_dir: str, output, *extra: str) -> tuple[list[dict], dict]:
    """`rsearch train` on the Parquet data at data_dir, in this process: (epoch rows, summary)."""
    argv = [*TINY_RUN, "--data", "parquet", "--data-dir", data_dir, *extra]
    code, _, err = run_cli([*argv, "--output", str(output)], capsys)
    assert code == 0, err[-3000:]
    epochs = pq.read_table(output / "epochs.parquet", columns=list(EPOCH_COLUMNS)).to_pylist()
    return epochs, json.loads((output / "summary.json").read_text())


def test_training_from_s3_shards_gives_the_loss_trajectory_of_the_same_shards_read_locally(
    tmp_path, s3_root, capsys
):
    local = shards(tmp_path / "shards")
    remote = uploaded(local, s3_root)
    from_disk, disk_summary = train(capsys, str(local), tmp_path / "local")
    # Two DataLoader processes read the bucket: each opens its own S3 client after the fork.
    from_s3, s3_summary = train(capsys, remote, tmp_path / "s3", "--loader-workers", "2")
    assert [row["epoch"] for row in from_s3] == [1, 2]
    assert from_s3 == from_disk  # every epoch's loss, accuracy and learning rate, exactly
    same = ("train_size", "minival_size", "test_size", "minival_fingerprint", "test_top1")
    assert {k: s3_summary[k] for k in same} == {k: disk_summary[k] for k in same}
    assert s3_summary["test_size"] == 12  # the test shard was found in the bucket too


def test_a_space_may_name_parquet_shards_in_a_bucket(tmp_path, s3_root):
    remote = uploaded(shards(tmp_path / "shards"), s3_root)
    data = parse_data({"source": "parquet", "dir": remote})
    assert data["dir"] == remote
    # what `rsearch tune --dry-run` reads before Ray starts: the labels, from the bucket
    assert data_shape(DataConfig(**data_config_kwargs(data))) == {"num_classes": 3, "in_chans": 3}


def test_credentials_in_a_uri_are_refused_and_never_printed(tmp_path, s3_root, capsys):
    """A URI's user:password@ would be saved with everything that records the location (the
    run's config, checkpoints, space.yaml, model cards): refused, and never echoed."""
    secret = s3_root.replace("s3://", "s3://testing:top-secret@")
    location = storage.join(secret, "shards")
    with pytest.raises(UserError) as caught:
        data_shape(DataConfig(source="parquet", data_dir=location))
    assert "top-secret" not in str(caught.value)
    assert str(caught.value).startswith("--data-dir: credentials in the URI (s3://***@")
    with pytest.raises(UserError, match="^data.dir: credentials in the URI"):
        parse_data({"source": "parquet", "dir": location})
    code, _, err = run_cli(["tune", "--space", str(SMOKE), "--storage", secret], capsys)
    assert code == 2 and "--storage: credentials in the URI" in err and "top-secret" not in err
    assert "top-secret" not in storage.redacted(secret + "&session_token=abc")
    assert storage.redacted(secret + "&session_token=abc").endswith("&session_token=***")


def test_a_uri_without_a_bucket_is_one_line(tmp_path, s3_root, capsys):
    no_bucket = "s3://?" + s3_root.partition("?")[2]
    line = _data_dir_error(capsys, "parquet", no_bucket, tmp_path)
    assert line.startswith("rsearch train: error: --data-dir: expected a bucket after s3://")


def test_data_dir_is_refused_with_synthetic_data(tmp_path, capsys):
    line = _data_dir_error(capsys, "synthetic", str(tmp_path), tmp_path)
    assert line.startswith("rsearch train: error: --data-dir: not with --data synthetic")


def _data_dir_error(capsys, source: str, data_dir: str, tmp_path) -> str:
    """`rsearch train --data SOURCE --data-dir DATA_DIR`: exits 2 with one line, before any
    output is written; that line."""
    argv = [*TINY_RUN, "--data", source, "--data-dir", data_dir, "--output", str(tmp_path / "out")]
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert not (tmp_path / "out").exists()
    return lines[0]


def test_a_missing_bucket_an_empty_prefix_and_a_prefix_without_shards_are_one_line(
    tmp_path, s3_root, capsys
):
    missing = s3_root.replace(f"s3://{S3_BUCKET}/", "s3://no-such-bucket/")
    line = _data_dir_error(capsys, "parquet", missing, tmp_path)
    assert "--data-dir: bucket 'no-such-bucket' does not exist" in line, line
    line = _data_dir_error(capsys, "parquet", storage.join(s3_root, "nothing-here"), tmp_path)
    assert f"--data-dir: s3://{S3_BUCKET}/exps/nothing-here does not exist" in line, line
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no shards")
    notes = uploaded(tmp_path / "notes", s3_root, "notes")
    line = _data_dir_error(capsys, "parquet", notes, tmp_path)
    assert f"--data-dir: s3://{S3_BUCKET}/exps/notes holds no .parquet files" in line, line


def test_imagefolder_and_fashion_mnist_refuse_a_uri(tmp_path, s3_root, capsys):
    for source in ("imagefolder", "fashion-mnist"):
        line = _data_dir_error(capsys, source, s3_root, tmp_path)
        assert f"--data-dir: the {source} source reads a local or shared folder" in line, line
    with pytest.raises(UserError, match=r"data.dir: source imagefolder reads a local or shared"):
        parse_data({"source": "imagefolder", "dir": "s3://bucket/images"})
    with pytest.raises(UserError, match=r"data.dir: unknown scheme 'ftp'"):
        parse_data({"source": "parquet", "dir": "ftp://host/shards"})


def test_a_space_whose_bucket_is_missing_fails_before_ray_naming_data_dir(
    tmp_path, s3_root, capsys
):
    missing = s3_root.replace(f"s3://{S3_BUCKET}/", "s3://no-such-bucket/")
    space = yaml.safe_load(SMOKE.read_text())
    space["data"] = {"source": "parquet", "dir": missing}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    argv = [
        "tune",
        "--space",
        str(tmp_path / "space.yaml"),
        "--storage",
        str(tmp_path / "exps"),
        "--quiet",
    ]
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "data.dir: bucket 'no-such-bucket' does not exist" in lines[0], lines
