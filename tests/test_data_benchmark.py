"""benchmarks/input_pipeline.py runs (tiny settings, CPU) without Ray, in both modes."""

import json
import os
import subprocess
import sys
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
