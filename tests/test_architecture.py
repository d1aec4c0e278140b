"""One architecture value of either family, from the space to the results store: the trial's
config forms, each family's recipe and per-size defaults, one model builder (one latency-cache
key), older checkpoints and results, the dry run's class count, `rsearch train` of an
EfficientNet."""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from test_data_imagefolder import make_tree

from rsearch import metrics as M
from rsearch.architecture import Architecture
from rsearch.bounds import FieldError
from rsearch.models import model_config, network_config
from rsearch.results import create_experiment, read_experiment
from rsearch.space import parse_space
from rsearch.train.checkpoint import same_run
from rsearch.train.config import TrainConfig
from rsearch.tune.driver import dry_run_context
from rsearch.tune.trial import TrialContext, build_train_config, trial_settings

CTX = TrialContext(data={"source": "synthetic", "train_size": 100}, num_classes=10, in_chans=3)


@pytest.mark.parametrize(
    "config,arch",
    [
        # a grid's arch dimension: older ResNet-RS triples, and a family's 4-list
        ({"arch": [26, 0.25, 32]}, Architecture(26, 0.25, 32)),
        ({"arch": [0.5, 0.25, 48, "efficientnet"]}, Architecture(0.5, 0.25, 48, "efficientnet")),
        # one family's flat dimensions: ResNet-RS as ever, an EfficientNet's multipliers or name
        ({"depth": 26, "width": 0.5, "resolution": 32.0}, Architecture(26, 0.5, 32)),
        (
            {"family": "efficientnet", "depth_mult": 1.4, "width_mult": 1.2, "resolution": 64},
            Architecture(1.4, 1.2, 64, "efficientnet"),
        ),
        (
            {"family": "efficientnet", "model": "efficientnet-b2", "resolution": 96},
            Architecture(1.2, 1.1, 96, "efficientnet"),
        ),
    ],
)
def test_every_trial_config_form_names_one_architecture(config, arch):
    found, _, preset_name = trial_settings({**config, "epochs": 1})
    assert found == arch
    assert preset_name == ("rs" if arch.family == "resnetrs" else "efficientnet")


@pytest.mark.parametrize(
    "resolution,magnitude,model,dropout",
    [
        (224, 10, "efficientnet-b0", 0.2),
        (288, 15, "efficientnet-b2", 0.3),
        (456, 20, "efficientnet-b5", 0.4),
    ],
)
def test_an_efficientnet_trial_trains_with_efficientnets_recipe_and_sizes(
    resolution, magnitude, model, dropout
):
    config = {"family": "efficientnet", "model": model, "resolution": resolution, "epochs": 2}
    cfg = build_train_config(config, CTX)
    r = cfg.recipe
    assert cfg.family == "efficientnet" and r.optimizer == "rmsprop" and r.schedule == "exponential"
    # RandAugment by resolution (the paper's EfficientNet-RS rule), the model's own dropout
    assert r.randaugment_magnitude == magnitude and r.dropout == dropout
    assert r.stochastic_depth == 0.2
    net = cfg.model(CTX.num_classes, CTX.in_chans)
    assert net.name == model and net.dropout == dropout


def test_a_resnetrs_trial_keeps_its_own_recipe():
    cfg = build_train_config({"depth": 350, "width": 1.0, "resolution": 256, "epochs": 2}, CTX)
    assert cfg.recipe.optimizer == "sgd" and cfg.recipe.schedule == "cosine"
    assert cfg.recipe.randaugment_magnitude == 15 and cfg.recipe.stochastic_depth == 0.1


def test_one_builder_keeps_resnetrs_latency_cache_keys():
    """The trial, the cost table and the dry run build through network_config: a ResNet-RS's
    key is what the old per-caller builders gave (stored tables stay valid)."""
    arch = Architecture(26, 0.25, 32)
    old = dataclasses.replace(model_config(depth=26, width=0.25, num_classes=10), se_ratio=0.25)
    assert network_config(arch, num_classes=10, in_chans=3).cache_key() == old.cache_key()
    cfg = TrainConfig(depth=26, width=0.25, resolution=32)
    assert cfg.model(10, 3).cache_key() == old.cache_key()
    effnet = network_config(
        Architecture(1.0, 1.0, 224, "efficientnet"), num_classes=100, in_chans=3
    )
    assert "family=efficientnet" in effnet.cache_key() and "classes=100" in effnet.cache_key()


def test_train_config_names_the_bad_field_per_family():
    with pytest.raises(FieldError, match="^family: expected one of resnetrs, efficientnet"):
        TrainConfig(depth=26, family="vit")
    with pytest.raises(FieldError, match="^depth_mult: expected a number in"):
        TrainConfig(depth=0.0, width=1.0, family="efficientnet")
    with pytest.raises(FieldError, match="^width_mult: expected a number in"):
        TrainConfig(depth=1.0, width=-1.0, family="efficientnet")
    with pytest.raises(FieldError, match="^depth: expected"):
        TrainConfig(depth=1.5)  # a multiplier is no ResNet-RS depth


def test_a_checkpoint_from_before_the_family_still_continues_its_run():
    today = TrainConfig(depth=26, width=0.25).to_dict()
    older = {key: value for key, value in today.items() if key != "family"}
    new_recipe_fields = ("optimizer", "lr_decay_rate", "lr_decay_epochs")
    older["recipe"] = {k: v for k, v in today["recipe"].items() if k not in new_recipe_fields}
    older["data"] = {k: v for k, v in today["data"].items() if k != "minival_in_train"}
    assert same_run(older) == same_run(today)
    final = {**today, "data": {**today["data"], "minival_in_train": True}}
    assert same_run(final) != same_run(today)  # a field added since still counts when set
    effnet = TrainConfig(depth=1.0, width=1.0, family="efficientnet").to_dict()
    assert same_run(effnet) != same_run(today)


def test_results_from_before_the_family_read_as_resnetrs(tmp_path):
    create_experiment(tmp_path, {"name": "old"}, {})
    columns = {M.TRIAL_ID: ["a"], M.STATUS: ["ok"], M.DEPTH: [50], M.WIDTH: [1.0]}
    columns.update({M.RESOLUTION: [160], M.EPOCHS: [10]})
    pq.write_table(pa.table(columns), tmp_path / "results.parquet")
    frame = read_experiment(tmp_path).results
    assert frame[M.FAMILY].tolist() == ["resnetrs"] and frame[M.DEPTH_MULT].isna().all()


def test_the_dry_run_costs_the_models_of_the_data_it_will_train_on(tmp_path):
    make_tree(tmp_path / "data", classes=("a", "b", "c", "d"))
    base = {"epochs": 1, "scaling": {"depth": 26, "width": 0.25, "resolution": 32}}
    space = parse_space({**base, "data": {"source": "imagefolder", "dir": str(tmp_path / "data")}})
    ctx = dry_run_context(space, str(tmp_path / "exp"))
    assert (ctx.num_classes, ctx.in_chans) == (4, 3)  # not the synthetic default of 10
    grey = parse_space({**base, "data": {"source": "synthetic", "num_classes": 7}})
    assert dry_run_context(grey, str(tmp_path / "exp")).num_classes == 7


def test_a_dry_run_away_from_the_data_plans_for_the_declared_classes(tmp_path, capsys):
    # plans are often made on a laptop for a cluster that holds the data
    base = {"epochs": 1, "scaling": {"depth": 26, "width": 0.25, "resolution": 32}}
    data = {"source": "imagefolder", "dir": str(tmp_path / "absent")}
    ctx = dry_run_context(parse_space({**base, "data": data}), str(tmp_path / "exp"))
    assert (ctx.num_classes, ctx.in_chans) == (10, 3)
    note = capsys.readouterr().err
    assert "data.dir:" in note and "does not exist" in note and "10 classes instead" in note


def test_train_an_efficientnet_with_its_own_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "efficientnet-b0", "--resolution", "32", "--epochs", "1"]
    argv += ["--train-size", "200", "--batch-size", "32", "--output", str(out), "--json"]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and (out / "checkpoint.pt").exists()
    summary = json.loads(stdout)
    config = summary["config"]
    assert config["family"] == "efficientnet" and config["depth"] == 1.0
    assert config["recipe"]["optimizer"] == "rmsprop" and config["recipe"]["dropout"] == 0.2


@pytest.mark.parametrize(
    "flags,message",
    [
        (
            ["--model", "efficientnet-b9"],
            "rsearch train: error: --model: expected one of efficientnet-b0",
        ),
        (
            ["--model", "efficientnet-b0", "--width", "2"],
            "rsearch train: error: --width: an EfficientNet",
        ),
        (
            ["--model", "efficientnet-b0", "--depth", "50"],
            "rsearch train: error: --depth: an EfficientNet",
        ),
    ],
)
def test_bad_efficientnet_training_input_is_one_line(flags, message, tmp_path, capsys):
    code, out, err = run_cli(["train", *flags, "--output", str(tmp_path / "x")], capsys)
    assert code == 2 and out == "" and err.strip().startswith(message), err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
