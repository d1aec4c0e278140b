"""benchmarks/input_pipeline.py runs (tiny settings, CPU) without Ray, in both modes."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "input_pipeline.py"
TINY = [
    "--resolution",
    "16",
    "--batch",
    "8",
    "--steps",
    "2",
    "--warmup",
    "1",
    "--rounds",
    "1",
    "--train-size",
    "48",
    "--threads",
    "1",
]


def _run(tmp_path, *args):
    env = dict(os.environ, RSEARCH_CACHE=str(tmp_path / "cache"))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_pipeline_mode_prints_both_rates_and_the_ratio_and_never_imports_ray(tmp_path):
    report = tmp_path / "pipeline.json"
    stdout = _run(tmp_path, "--json", str(report))
    assert (
        "input pipeline" in stdout and "training step" in stdout and "ratio pipeline/step" in stdout
    )
    record = json.loads(report.read_text())
    result = record["result"]
    assert result["pipeline"] > 0 and result["step"] > 0
    assert result["ratio"] == pytest.approx(result["pipeline"] / result["step"])
    assert record["environment"]["ray_imported"] is False


def test_e2e_mode_on_a_jpeg_folder_made_from_the_synthetic_scenes(tmp_path):
    report = tmp_path / "e2e.json"
    stdout = _run(
        tmp_path,
        "--e2e",
        "--prepare-jpeg",
        str(tmp_path / "jpeg"),
        "--jpeg-size",
        "24",
        "--workers",
        "1",
        "--transfer",
        "float",
        "--json",
        str(report),
    )
    assert "end to end (real loader)" in stdout and "step on synthetic tensors" in stdout
    assert len(list((tmp_path / "jpeg" / "train").glob("*/*.jpg"))) == 48
    result = json.loads(report.read_text())["result"]
    assert result["e2e"] > 0 and result["synthetic_step"] > 0
    # where the fed step's host time went, per batch, beside the step's own time
    host = result["host_ms_per_batch"]
    assert set(host) == {"loader_wait", "device_augment", "step"}
    assert host["step"] > 0 and host["device_augment"] == 0  # decoded by the CPU workers
    assert result["step_ms_per_batch"] == pytest.approx(8e3 / result["synthetic_step"])
    assert "host ms per batch: loader_wait" in stdout


def test_the_jpeg_folder_is_rendered_in_chunks_across_processes(tmp_path):
    folder = tmp_path / "jpeg"
    args = ["--prepare-jpeg", str(folder), "--prepare-only", "--jpeg-size", "16"]
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--train-size", "260", *args],  # chunks of 250 and 10
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    files = sorted((folder / "train").glob("class*/*.jpg"))
    assert sorted(int(f.stem) for f in files) == list(range(260))  # every scene, once
    assert len({f.parent.name for f in files}) == 10 and (folder / "train" / ".complete").exists()


def test_gpu_check_keeps_to_its_budget_and_returns_two_files(tmp_path):
    """The script a lent GPU machine runs (DEVICE=cpu here): a check that no longer fits
    BUDGET is skipped, and OUTDIR holds only the log and one archive (8 files come back)."""
    out, work = tmp_path / "out", tmp_path / "work"
    env = dict(os.environ, DEVICE="cpu", BUDGET="100", WORK=str(work), PYTHON=sys.executable)
    run = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks" / "gpu_check.sh"),
            str(out),
            "latency",
            "family",
            "nosuch",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=ROOT,
    )
    assert run.returncode == 1, run.stderr[-2000:]  # a check failed: the unknown one
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "results.tar"]
    log = (out / "log.txt").read_text()
    assert "== latency: exit 0" in log
    assert "== family: skipped" in log and "== nosuch: unknown check" in log
    assert log.rstrip().splitlines()[-1].startswith("== done in")  # the log's last line kept
    assert "failed: nosuch;" in log
    with tarfile.open(out / "results.tar") as archive:
        names = {Path(n).name for n in archive.getnames()}
        latency = json.load(archive.extractfile("latency.json"))
    assert {"gpu.txt", "latency.json", "latency.err"} <= names and "family.json" not in names
    assert latency["latency"][0]["latency_ms"] > 0
