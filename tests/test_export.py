"""`rsearch export`: a trained ResNet-RS-50 to PyTorch, timm (strict) and ONNX (checked with ONNX
Runtime); a search's trial by id or the best under a budget, as `rsearch analyze` picks it;
bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import run_cli
from test_tune import run_tune, smoke_space  # tests/ is on sys.path (pytest prepend mode)

from rsearch import metrics as M
from rsearch import results
from rsearch.cost import model_cost
from rsearch.models import build
from rsearch.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, same_run
from rsearch.train.config import TrainConfig

TINY_RS50 = (
    "--model resnetrs-50 --resolution 32 --epochs 1 --train-size 48 --batch-size 16 --num-classes 5"
).split()


@pytest.fixture(scope="module")
def rs50_run(tmp_path_factory):
    """An `rsearch train --output` folder of a ResNet-RS-50 after a few steps at 32 px."""
    out = tmp_path_factory.mktemp("runs") / "rs50"
    from rsearch import cli

    assert cli.main(["train", *TINY_RS50, "--output", str(out)]) == 0
    return out


def _export(capsys, *argv):
    return run_cli(["export", *map(str, argv)], capsys)


def test_timm_loads_the_exported_resnetrs50_strictly_with_the_evaluated_weights(
    rs50_run, tmp_path, capsys
):
    timm = pytest.importorskip("timm")
    code, out, err = _export(capsys, rs50_run, "--format", "timm", "-o", tmp_path / "m")
    assert code == 0, err
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["timm_model"] == "resnetrs50" and card["weights_are"] == "ema"
    theirs = timm.create_model("resnetrs50", num_classes=5)
    weights = torch.load(tmp_path / "m" / "pytorch_model.bin", weights_only=True)
    theirs.load_state_dict(weights, strict=True)
    # the weights are the EMA's, the ones the run evaluated
    ema = load_checkpoint(rs50_run / CHECKPOINT_FILE)["ema"]
    assert all(torch.equal(weights[k], ema[k]) for k in ema)
    # and timm's network computes what rsearch's does with them
    ours = build(_config(rs50_run))
    ours.load_state_dict(weights)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), theirs.eval()(x), atol=1e-5)


def _config(run):
    """The model configuration of an `rsearch train` run (5 classes, 3 channels)."""
    state = load_checkpoint(run / CHECKPOINT_FILE)
    return TrainConfig.from_dict(state["config"]).model(5, 3)


def test_the_onnx_export_agrees_with_pytorch_and_the_card_records_it(rs50_run, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    code, out, err = _export(capsys, rs50_run, "--format", "onnx", "-o", tmp_path / "m")
    assert code == 0, err
    assert "max |PyTorch - ONNX Runtime|" in out
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    check = card["onnx_check"]
    assert check["same_top1"] and check["max_abs_diff"] < 1e-3
    # a batch of another size runs too (dynamic batch), with the same top-1 as PyTorch
    model = build(_config(rs50_run))
    model.load_state_dict(load_checkpoint(rs50_run / CHECKPOINT_FILE)["ema"])
    x = torch.randn(3, 3, 32, 32)
    session = ort.InferenceSession(str(tmp_path / "m" / "model.onnx"))
    got = session.run(["logits"], {"images": x.numpy()})[0]
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert (got.argmax(1) == expected.argmax(1)).all() and np.abs(got - expected).max() < 1e-3


def test_the_model_card_says_what_the_model_is_and_what_was_measured(rs50_run, tmp_path, capsys):
    code, _, err = _export(capsys, rs50_run, "-o", tmp_path / "m")  # --format pt, the default
    assert code == 0, err
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    summary = json.loads((rs50_run / "summary.json").read_text())
    assert card["architecture"] == {
        "family": "resnetrs",
        "depth": 50,
        "width": 1.0,
        "resolution": 32,
        "num_classes": 5,
        "in_chans": 3,
    }
    assert card["minival_top1"] == summary["minival_top1"]
    assert card["test_top1"] == summary["test_top1"] and card["test_top1_se"] > 0
    assert card["recipe"]["se"] and card["recipe"]["ema_decay"] == 0.9999  # the RS recipe
    assert card["data"]["train_size"] == 48 and card["epochs"] == 1
    counted = model_cost(_config(rs50_run), 32)
    assert card["params"] == counted["params"] and card["flops"] == counted["flops"]
    assert card["versions"]["torch"] == torch.__version__ and card["trial_id"] is None
    saved = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    assert set(saved) == {"state_dict", "config"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--format", "timm"],
            "--format timm: expected a ResNet-RS timm ships (depth 50, 101, 152, 200, 270, 350, "
            "420 at width 1, ResNet-D and SE on, 3 channels), got resnetrs 26,0.25,32 (3 channels)"
            "; use --format pt or onnx",
        ),
        (["--best"], "--trial/--best: SOURCE is one `rsearch train` run, not an experiment"),
        (["--budget-ms", "2"], "--regime/--budget-ms: choose the trial with --best, or drop them"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, argv, message):
    run = tmp_path / "tiny"
    tiny = "--depth 26 --width 0.25 --resolution 32 --epochs 1 --train-size 40 --batch-size 8"
    assert run_cli(["train", *tiny.split(), "--output", str(run)], capsys)[0] == 0
    code, _, err = _export(capsys, run, *argv, "-o", tmp_path / "out")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.strip().startswith(f"rsearch export: error: {message}"), err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging left


def test_broken_sources_and_unwritable_outputs_are_one_line_exit_2(rs50_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    code, _, err = _export(capsys, broken, "-o", tmp_path / "a")
    assert code == 2 and "summary.json is not readable JSON" in err
    (broken / "summary.json").write_text("{}")
    torch.save({"model": {}}, broken / CHECKPOINT_FILE)  # loads, but rebuilds no network
    code, _, err = _export(capsys, broken, "-o", tmp_path / "a")
    assert code == 2 and "is not an rsearch checkpoint (no config and weights" in err
    (tmp_path / "afile").write_text("")
    code, _, err = _export(capsys, rs50_run, "-o", tmp_path / "afile" / "sub")
    assert code == 2 and err.strip().startswith("rsearch export: error: -o: cannot write")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "a").exists()


def test_the_exported_folder_has_the_permissions_of_a_plain_mkdir(rs50_run, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert _export(capsys, rs50_run, "-o", tmp_path / "m")[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755


def test_an_unknown_source_and_a_used_output_folder_are_refused(rs50_run, tmp_path, capsys):
    code, _, err = _export(capsys, tmp_path, "-o", tmp_path / "out")
    assert code == 2 and "SOURCE: expected an experiment folder (experiment.json)" in err
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    code, _, err = _export(capsys, rs50_run, "-o", tmp_path / "used")
    assert code == 2 and "-o: " in err and "is not an empty folder" in err
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["keep.txt"]


# --- from a search ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The smoke search to the end (two trained trials and one over its budget)."""
    root = tmp_path_factory.mktemp("search")
    proc = run_tune(smoke_space(root, "exportable"), root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "exportable"


@pytest.mark.slow
def test_best_under_a_budget_is_the_trial_analyze_names_for_that_budget(searched, tmp_path, capsys):
    frame = results.read_experiment(searched).results
    ok = frame[frame[M.STATUS] == M.STATUS_OK].sort_values(M.LATENCY_MS)
    # a budget between the two trained trials' latencies: only the faster one is within it
    budget = float(ok[M.LATENCY_MS].mean())
    code, out, _ = run_cli(["analyze", str(searched), "--budgets", f"{budget}", "--json"], capsys)
    assert code == 0
    named = json.loads(out)["regimes"][0]["family"][0]["trial_id"]
    code, _, err = _export(capsys, searched, "--best", "--budget-ms", budget, "-o", tmp_path / "m")
    assert code == 0, err
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["trial_id"] == named == ok.iloc[0][M.TRIAL_ID]
    row = frame.set_index(M.TRIAL_ID).loc[named]
    assert card["minival_top1"] == row[M.MINIVAL_TOP1] and card["latency_ms"] == row[M.LATENCY_MS]
    assert card["latency_method"]["device"] == "cpu" and card["flops"] == row[M.FLOPS]
    # no budget: the most accurate trained trial (a tie: the faster one)
    code, _, err = _export(capsys, searched, "--best", "-o", tmp_path / "any")
    ranked = ok.sort_values([M.MINIVAL_TOP1, M.LATENCY_MS], ascending=[False, True])
    best = ranked.iloc[0][M.TRIAL_ID]
    assert json.loads((tmp_path / "any" / "model.json").read_text())["trial_id"] == best


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trial", "nope"], "--trial: 'nope' is not a trial of exportable; expected one of "),
        (["--best", "--budget-ms", "0.0001"], "--best: no finished trial of the 1-epoch regime "),
        (["--best", "--regime", "7"], "--regime: expected one of 1 (the experiment's epoch"),
        ([], "SOURCE: an experiment; expected --trial ID or --best to choose a trial"),
    ],
)
def test_bad_choices_of_a_trial_are_one_line_exit_2(searched, tmp_path, capsys, argv, message):
    code, _, err = _export(capsys, searched, *argv, "-o", tmp_path / "m")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.strip().startswith(f"rsearch export: error: {message}"), err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_trial_over_the_budget_has_no_checkpoint_to_export(searched, tmp_path, capsys):
    frame = results.read_experiment(searched).results
    over = frame[frame[M.STATUS] == M.STATUS_INFEASIBLE][M.TRIAL_ID].iloc[0]
    code, _, err = _export(capsys, searched, "--trial", over, "-o", tmp_path / "m")
    assert code == 2 and f"--trial: {over} has no checkpoint (infeasible" in err


# --- rsearch train --from-trial --------------------------------------------------------------


def _trial_state(searched) -> tuple[str, dict]:
    frame = results.read_experiment(searched).results
    trial = frame[frame[M.STATUS] == M.STATUS_OK][M.TRIAL_ID].iloc[0]
    row = frame.set_index(M.TRIAL_ID).loc[trial]
    return trial, load_checkpoint(searched / row[M.CHECKPOINT] / CHECKPOINT_FILE)


@pytest.mark.slow
def test_from_trial_reproduces_the_trials_configuration_exactly(searched, tmp_path, capsys):
    trial, state = _trial_state(searched)
    out = tmp_path / "again"
    argv = ["train", "--from-trial", f"{searched}/{trial}", "--keep-minival", "--output", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    again = load_checkpoint(out / CHECKPOINT_FILE)["config"]
    assert same_run(again) == same_run(state["config"])
    summary = json.loads((out / "summary.json").read_text())
    held_out = TrainConfig.from_dict(state["config"]).data
    assert summary["train_size"] + summary["minival_size"] == held_out.train_size  # held out


@pytest.mark.slow
def test_from_trial_trains_on_the_minival_split_too_and_reports_test_top1(
    searched, tmp_path, capsys
):
    trial, state = _trial_state(searched)
    out = tmp_path / "final"
    argv = ["train", "--from-trial", f"{searched}/{trial}", "--output", str(out), "--json"]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    config = summary["config"]
    assert config["data"]["minival_in_train"] is True
    assert same_run({**config, "data": {**config["data"], "minival_in_train": False}}) == same_run(
        state["config"]
    )
    # every training image trains: the held-out split's images are in the training set now
    held_out = TrainConfig.from_dict(state["config"]).data
    assert summary["train_size"] == held_out.train_size and summary["test_top1"] is not None
    # its card says the minival accuracy is no held-out estimate, and names the trial
    assert run_cli(["export", str(out), "-o", str(tmp_path / "card")], capsys)[0] == 0
    card = json.loads((tmp_path / "card" / "model.json").read_text())
    assert card["minival_held_out"] is False
    assert card["trial_id"] == trial
    assert card["retrained_from"] == {"experiment": str(searched), "trial_id": trial}


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--from-trial", "{exp}/nope"], "--from-trial: 'nope' is not a trial of exportable"),
        (["--from-trial", "{exp}/x", "--depth", "50"], "--depth: --from-trial takes the trial's"),
        (["--from-trial", "{exp}/x", "--seed", "7"], "--seed: --from-trial takes the trial's"),
        (["--from-trial", "justone"], "--from-trial: expected EXPERIMENT/TRIAL_ID"),
        (["--keep-minival", "--depth", "26"], "--keep-minival: only with --from-trial"),
    ],
)
def test_from_trial_bad_input_is_one_line_exit_2(searched, tmp_path, capsys, argv, message):
    argv = [a.replace("{exp}", str(searched)) for a in argv]
    code, _, err = run_cli(["train", *argv, "--output", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.strip().startswith(f"rsearch train: error: {message}"), err
    assert not (tmp_path / "o").exists()
