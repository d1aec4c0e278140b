"""The dry run's cost forecast: counted FLOPs, rung counts, GPU-hours from the declared fit, wall
time on N GPUs, the --json object and the bad-input lines. No Ray is started."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

from rsearch.architecture import Architecture
from rsearch.cli import main
from rsearch.cost import model_cost
from rsearch.models import model_config, network_config
from rsearch.space.schema import SchedulerSpec
from rsearch.tune import forecast as fc

ROOT = Path(__file__).resolve().parents[1]

# 4 architectures, ASHA with rungs at 1 and 3 epochs of a 9-epoch regime, one GPU per trial;
# 1,000 synthetic images less 10% minival = 900 a trial trains on per epoch (batch 100).
FOUR = {
    "name": "four",
    "data": {
        "source": "synthetic",
        "num_classes": 10,
        "train_size": 1000,
        "test_size": 100,
        "minival_fraction": 0.1,
    },
    "epochs": [9],
    "scaling": {"depth": [26, 50], "width": [0.25, 0.5], "resolution": [32]},
    "recipe": {"batch_size": 100},
    "search": {
        "algorithm": "grid",
        "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 3},
    },
    "resources": {"workers": 1, "cpus_per_worker": 1, "gpus_per_worker": 1},
}


def write_space(tmp_path: Path, **changes) -> Path:
    space = {**FOUR, **changes}
    path = tmp_path / "four.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def setting(**changes) -> fc.Setting:
    base = dict(
        regimes=[9],
        scheduler=SchedulerSpec("asha", grace_period=1, reduction_factor=3),
        workers=1,
        gpus_per_worker=1.0,
        batch_size=100,
        train_images=900,  # FOUR's 1,000 less its 10% minival
        max_concurrent=None,
    )
    return fc.Setting(**{**base, **changes})


def test_counted_costs_are_model_costs_exactly():
    archs = [Architecture.of(d, w, r) for d, w, r in [(26, 0.25, 32), (101, 1.5, 160), (50, 2, 64)]]
    fast = fc.count_costs(archs, num_classes=1000, in_chans=3)
    for arch in archs:
        whole = model_cost(network_config(arch, num_classes=1000, in_chans=3), arch.resolution)
        assert (fast[arch.key]["params"], fast[arch.key]["flops"]) == (
            whole["params"],
            whole["flops"],
        )


def test_the_declared_fit_goes_through_the_measured_figures_it_cites():
    # DESIGN.md section 3: the GFLOPs of each point are model_cost's, 1000 classes
    for name, gflops, ips in fc.DECLARED_POINTS:
        depth, resolution = int(name.split("-")[1].split()[0]), int(name.split("@")[1])
        counted = model_cost(model_config(depth=depth, num_classes=1000), resolution)["flops"]
        assert counted / 1e9 == pytest.approx(gflops, rel=1e-6)
        assert fc.DECLARED_FIT.images_per_second(gflops * 1e9) == pytest.approx(ips, rel=0.12)
    assert fc.DECLARED_FIT.source == fc.FLOPS_ESTIMATE


def test_asha_rungs_are_ray_ashas_milestones():
    from ray.tune.schedulers.async_hyperband import _Bracket

    for grace, max_t, rf in [(1, 9, 3), (1, 10, 3), (2, 100, 3), (1, 350, 2.5), (3, 9, 3)]:
        ray_rungs = [m for m, _ in _Bracket(grace, max_t, rf, 0)._rungs if m < max_t]
        assert fc._asha_rungs(grace, max_t, rf) == sorted(math.ceil(m) for m in ray_rungs)


def test_four_architectures_on_two_asha_rungs_by_hand():
    # --throughput 3 TFLOP/s: img/s = 3e12 / (3 x FLOPs) = 1000 / GFLOPs, so an epoch of 900
    # images (batch 100) costs 0.9 x GFLOPs GPU-seconds: 0.9, 1.8, 2.7, 3.6 s, mean 2.25 s.
    fit = fc.throughput_fit(3.0)
    out = fc.forecast([1e9, 2e9, 3e9, 4e9], setting(), fit, gpus=2)
    (regime,) = out["regimes"]
    assert [(r["epoch"], r["trials"], r["epochs"]) for r in regime["rungs"]] == [
        (1, 4, 1),  # every trial trains to the first rung
        (3, 2, 2),  # ceil(4 / 3) go on
        (9, 1, 6),  # ceil(4 / 9) to the end
    ]
    seconds = [4 * 1 * 2.25, 2 * 2 * 2.25, 1 * 6 * 2.25]
    assert [r["gpu_hours"] * 3600 for r in regime["rungs"]] == pytest.approx(seconds)
    assert out["gpu_hours"] * 3600 == pytest.approx(sum(seconds))
    # expected epochs per trial (4x1 + 2x2 + 1x6) / 4 = 3.5: trials of 3.15, 6.3, 9.45, 12.6 s
    # on 2 slots in order: A 3.15, B 6.3, A 3.15+9.45 = 12.6, B 6.3+12.6 = 18.9
    assert out["wall_hours"] * 3600 == pytest.approx(18.9)
    assert out["concurrent_trials"] == 2 and out["source"] == fc.FLOPS_ESTIMATE


def test_fifo_is_one_rung_and_workers_share_a_trials_gpus():
    fit = fc.throughput_fit(3.0)
    eight = setting(scheduler=SchedulerSpec("fifo"), workers=8)
    out = fc.forecast([1e9, 1e9], eight, fit, gpus=16)
    (rung,) = out["regimes"][0]["rungs"]
    assert (rung["trials"], rung["epochs"]) == (2, 9)
    assert out["gpu_hours"] * 3600 == pytest.approx(2 * 9 * 0.9)  # GPU-seconds do not change
    assert out["wall_hours"] * 3600 == pytest.approx(9 * 0.9 / 8)  # 2 trials at once, 8 GPUs each


def test_list_schedule_waits_for_the_first_free_slot():
    assert fc.list_schedule([5, 1, 1, 1], 2) == 5
    assert fc.list_schedule([1, 1, 1], 1) == 3
    assert fc.list_schedule([], 4) == 0


def test_measured_fit_times_training_steps(monkeypatch):
    # the GPU path's code on the CPU: one warm-up and one timed step of two tiny models
    monkeypatch.setattr(fc, "SAMPLE_STEPS", 1)
    monkeypatch.setattr(fc, "SAMPLE_WARMUP", 1)
    archs = [Architecture.of(26, 0.25, 32), Architecture.of(26, 0.5, 32)]
    costs = fc.count_costs(archs, num_classes=10, in_chans=3)

    class Ctx:
        num_classes, in_chans = 10, 3

    fit = fc.measure_fit(archs, costs, setting(batch_size=2), Ctx, "cpu")
    assert fit.source == fc.MEASURED and fit.k > 0 and "batch 2" in fit.basis


def dry_run(capsys, monkeypatch, path: Path, *flags: str) -> str:
    monkeypatch.setattr("rsearch.commands.tune._cuda_here", lambda: False)  # the declared fit
    assert main(["tune", "--space", str(path), "--dry-run", *flags]) == 0
    return capsys.readouterr().out


def test_dry_run_json_forecast_uses_the_declared_fit_without_gpus(tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    path = write_space(tmp_path)
    out = dry_run(capsys, monkeypatch, path, "--storage", str(store), "--json", "--gpus", "2")
    report = json.loads(out)
    forecast = report["forecast"]
    assert forecast["source"] == "flops-estimate" and forecast["device"] == "cuda"
    assert forecast["fit"]["k"] == pytest.approx(fc.DECLARED_FIT.k)
    (regime,) = forecast["regimes"]
    assert [r["trials"] for r in regime["rungs"]] == [4, 2, 1]
    assert [r["epochs"] for r in regime["rungs"]] == [1, 2, 6]
    per_epoch = [
        900 / fc.DECLARED_FIT.images_per_second(a["flops"]) for a in report["architectures"]
    ]
    mean = sum(per_epoch) / 4
    assert forecast["gpu_hours"] * 3600 == pytest.approx((4 * 1 + 2 * 2 + 1 * 6) * mean)
    assert report["latency_measured"] is False and forecast["gpus"] == 2
    assert not store.exists()


def test_dry_run_text_marks_the_estimate(tmp_path, capsys, monkeypatch):
    out = dry_run(capsys, monkeypatch, write_space(tmp_path), "--storage", str(tmp_path / "s"))
    assert "forecast (estimate from FLOPs: img/s per GPU = " in out
    assert "9 epochs: 4 trials trained" in out and "1 to epoch 9 (+6: " in out


def test_latency_budget_is_not_applied_unless_measured(tmp_path, capsys, monkeypatch):
    budget = {"latency_ms": {"max": 1.0, "device": "cpu", "repeats": 2, "threads": 1}}
    path = write_space(tmp_path, constraints=budget)
    report = json.loads(dry_run(capsys, monkeypatch, path, "--storage", str(tmp_path), "--json"))
    assert report["forecast"]["latency_budget_applied"] is False
    assert report["feasible"] is None and all(
        a["feasible"] is None for a in report["architectures"]
    )
    assert all(a["latency_ms"] is None for a in report["architectures"])


def test_cpu_trials_have_a_forecast_only_from_throughput(tmp_path, capsys, monkeypatch):
    cpu = {"workers": 1, "cpus_per_worker": 1, "gpus_per_worker": 0}
    path = write_space(tmp_path, resources=cpu)
    flags = ("--storage", str(tmp_path), "--json")
    assert json.loads(dry_run(capsys, monkeypatch, path, *flags))["forecast"] is None
    report = json.loads(dry_run(capsys, monkeypatch, path, *flags, "--throughput", "0.03"))
    assert report["forecast"]["device"] == "cpu" and report["forecast"]["gpu_hours"] > 0


@pytest.mark.parametrize(
    "flags,line",
    [
        (["--gpus", "0"], "rsearch tune: error: --gpus: expected an integer >= 1, got '0'"),
        (["--gpus", "1.5"], "rsearch tune: error: --gpus: expected an integer >= 1, got '1.5'"),
        (["--throughput", "0"], "rsearch tune: error: --throughput: expected a number > 0"),
        (["--throughput", "x"], "rsearch tune: error: --throughput: expected a number > 0"),
    ],
)
def test_bad_forecast_flags_are_one_line(tmp_path, flags, line, capsys):
    store = tmp_path / "store"
    argv = ["tune", "--space", str(write_space(tmp_path)), "--storage", str(store), *flags]
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(line), err
    assert not store.exists()


@pytest.mark.parametrize(
    "changes,flags,message",
    [
        (
            {"resources": {"workers": 4, "gpus_per_worker": 1}},
            ["--dry-run", "--gpus", "2"],
            "--gpus: expected at least one trial's 4 GPUs",
        ),
        (
            {"resources": {"workers": 1, "gpus_per_worker": 0}},
            ["--dry-run", "--gpus", "2"],
            "--gpus: a forecast of CPU trials needs --throughput",
        ),
        ({}, ["--gpus", "2"], "--gpus: only with --dry-run"),
    ],
)
def test_a_forecast_that_cannot_be_made_is_one_line(tmp_path, changes, flags, message, capsys):
    store = tmp_path / "store"
    path = write_space(tmp_path, **changes)
    argv = ["tune", "--space", str(path), "--storage", str(store), *flags]
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not store.exists()
