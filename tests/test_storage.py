"""Experiment locations: local paths and pyarrow URIs joined the same way (query kept last)."""

from __future__ import annotations

import os

import pyarrow.fs as pafs
import pytest

from rsearch import storage
from rsearch.errors import UserError
from rsearch.space.schema import check_storage_path

S3 = "s3://bucket/exps?endpoint_override=http://127.0.0.1:9000&region=eu-west-3"


def test_join_puts_parts_before_a_uris_query():
    assert (
        storage.join(S3, "quickstart", "tune")
        == "s3://bucket/exps/quickstart/tune?endpoint_override=http://127.0.0.1:9000&region=eu-west-3"
    )
    assert storage.join("gs://bucket/", "x") == "gs://bucket/x"
    assert storage.join("/tmp/r", "a?b", "tune") == "/tmp/r/a?b/tune"  # a local path has no query


def test_local_paths_are_made_absolute_with_home_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert storage.join("~/results", "q") == f"{tmp_path}/results/q"
    monkeypatch.chdir(tmp_path)
    assert storage.normalize("rel") == f"{tmp_path}/rel"


def test_basename_and_parent_ignore_the_query():
    exp = storage.join(S3, "quickstart")
    assert storage.basename(exp) == "quickstart"
    assert storage.parent(exp) == S3
    assert storage.basename("/a/b/") == "b" and storage.parent("/a/b") == "/a"


def test_filesystem_of_a_uri_parses_options_from_the_query():
    fs, path = storage.filesystem(storage.join(S3, "q"))
    assert (
        isinstance(fs, pafs.S3FileSystem) and path == "bucket/exps/q" and fs.region == "eu-west-3"
    )


def test_exists_and_has_entries(tmp_path):
    assert not storage.exists(tmp_path / "nope") and not storage.has_entries(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert storage.exists(tmp_path / "empty") and not storage.has_entries(tmp_path / "empty")
    (tmp_path / "empty" / "f").write_text("x")
    assert storage.has_entries(tmp_path / "empty")
    assert storage.has_entries(f"file://{tmp_path}")


def test_ray_storage_passes_uris_as_a_filesystem_and_local_paths_as_paths(tmp_path):
    assert storage.ray_storage(tmp_path) == {"storage_path": str(tmp_path)}
    where = storage.ray_storage(S3)
    assert where["storage_path"] == "bucket/exps" and isinstance(
        where["storage_filesystem"], pafs.S3FileSystem
    )


@pytest.mark.parametrize("bad", ["ftp://host/x", "s3://"])
def test_storage_flag_is_checked_like_the_space_key(bad):
    with pytest.raises(UserError, match="^--storage: "):
        check_storage_path(bad, "--storage")
    assert os.fspath(check_storage_path("s3://b/x", "--storage")) == "s3://b/x"
