"""`rsearch tune --storage s3://...`: the whole experiment (results, Tune's state, Ray Train runs,
the report) kept in an object store, through pyarrow's S3 filesystem, as on a cluster with a
bucket for storage. The store is a real S3 API server (moto's) on 127.0.0.1."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest
from conftest import S3_BUCKET as BUCKET  # the s3_root fixture's bucket
from test_tune import rsearch, smoke_space  # tests/ is on sys.path (pytest prepend mode)

from rsearch import metrics as M
from rsearch import results, storage


def objects_under(location: str) -> list[str]:
    fs, path = storage.filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return [i.path[len(path) + 1 :] for i in infos if i.type == pafs.FileType.File]


@pytest.mark.slow
def test_search_with_s3_storage_writes_results_tune_state_and_report_to_the_bucket(
    tmp_path, s3_root
):
    space = smoke_space(
        tmp_path, "cloud", scaling={"depth": [26], "width": [0.25, 2.0], "resolution": [32]}
    )
    proc = rsearch("tune", "--space", str(space), "--storage", s3_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp_uri = storage.join(s3_root, "cloud")
    assert (
        f"rsearch tune --resume '{exp_uri}'" in proc.stderr
    )  # how to continue it, quoted for a shell

    exp = results.read_experiment(exp_uri)
    assert exp.meta["status"] == "finished"
    assert sorted(exp.results[M.STATUS]) == [M.STATUS_INFEASIBLE, M.STATUS_OK]
    assert exp.results[M.MINIVAL_TOP1].notna().sum() == 1 and len(exp.curves) == 1
    stored = objects_under(exp_uri)
    assert {"experiment.json", "space.yaml", "results.parquet", "curves.parquet"} <= set(stored)
    assert any(p.startswith("tune/regime_1/experiment_state") for p in stored), (
        stored
    )  # Tune's own state
    assert any(p.startswith("tune/regime_1/") and "checkpoint" in p for p in stored), stored

    # Resuming the finished experiment from its URI re-runs nothing.
    again = rsearch("tune", "--resume", exp_uri, "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = results.read_experiment(exp_uri).results
    assert sorted(resumed[M.TRIAL_ID]) == sorted(exp.results[M.TRIAL_ID])
    assert list(results.read_experiment(exp_uri).curves[M.TRIAL_ID]) == list(exp.curves[M.TRIAL_ID])

    report = rsearch("dashboard", exp_uri)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "report.html" in objects_under(exp_uri)


def test_a_bucket_that_does_not_exist_is_a_one_line_error(tmp_path, s3_root):
    missing = s3_root.replace(f"s3://{BUCKET}/", "s3://no-such-bucket/")
    proc = rsearch("tune", "--space", str(smoke_space(tmp_path)), "--storage", missing, "--quiet")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "--storage" in proc.stderr, proc.stderr
