"""The EfficientNet family: torchvision's models parameter for parameter, FLOPs counted the
way ResNet-RS's are, and the configurations it refuses."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision.models as tvm
from conftest import run_cli
from torchvision.ops import StochasticDepth

from rsearch.bounds import FieldError
from rsearch.cost import LatencyMethod, model_cost
from rsearch.cost.cache import cache_key
from rsearch.models import model_config
from rsearch.models.efficientnet import PRESETS, build, efficientnet_config

NAMES = list(PRESETS)


def torchvision_model(name: str):
    return getattr(tvm, name.replace("-", "_"))


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_equal_torchvision(name):
    with torch.device("meta"):
        reference = torchvision_model(name)(num_classes=1000)
    ours = build(efficientnet_config(name, num_classes=1000), "meta")
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )


@pytest.mark.parametrize("name", NAMES)
def test_flops_are_twice_torchvision_published_macs(name):
    """torchvision's weights list GMACs ("_ops") at their evaluation crop; rsearch counts
    FLOPs as 2 x MACs with torch's flop counter on the meta device, as for ResNet-RS."""
    weights = tvm.get_model_weights(name.replace("-", "_")).IMAGENET1K_V1
    resolution = weights.transforms().crop_size[0]
    assert resolution == PRESETS[name].resolution
    flops = model_cost(efficientnet_config(name, num_classes=1000), resolution)["flops"]
    assert flops == pytest.approx(2e9 * weights.meta["_ops"], rel=0.05)


def test_any_multipliers_classes_and_one_channel_train_a_step():
    cfg = efficientnet_config(width_mult=0.25, depth_mult=0.5, num_classes=4, in_chans=1)
    model = build(cfg)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_the_recipe_sets_dropout_and_stochastic_depth():
    model = build(efficientnet_config("efficientnet-b0", dropout=0.1, stochastic_depth=0.3))
    assert model.classifier[0].p == 0.1
    depths = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    assert depths[0] == 0 and max(depths) < 0.3 and max(depths) == pytest.approx(0.3, rel=0.1)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"model": "efficientnet-b9"}, "model: expected one of efficientnet-b0, "),
        ({"width_mult": 0}, "width_mult: expected a number in (0, 8], got 0"),
        ({"depth_mult": -1.0}, "depth_mult: expected a number in (0, 8], got -1.0"),
        ({"in_chans": 2}, "in_chans: expected 1 or 3, got 2"),
        ({"num_classes": 1}, "num_classes: expected an integer in [2, 100,000], got 1"),
    ],
)
def test_bad_configurations_name_the_field(kwargs, message):
    with pytest.raises(FieldError) as caught:
        efficientnet_config(**kwargs)
    assert str(caught.value).startswith(message)


def test_rsearch_cost_counts_a_preset_at_its_own_resolution(capsys):
    code, out, _ = run_cli(["cost", "--model", "efficientnet-b1", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["family"] == "efficientnet" and report["resolution"] == 240
    assert report["params"] == 7_794_184 and report["model"] == "efficientnet-b1"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "efficientnet-b9"], "--model: expected one of efficientnet-b0, "),
        (["--model", "efficientnet-b0", "--width", "2"], "--width: expected no --width"),
        (["--model", "efficientnet-b0", "--in-chans", "2"], "--in-chans: invalid choice"),
    ],
)
def test_rsearch_cost_refuses_with_one_line(argv, message, capsys):
    code, out, err = run_cli(["cost", *argv], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert message in err


def test_the_latency_cache_keys_of_the_families_differ():
    a, b = efficientnet_config("efficientnet-b0"), efficientnet_config("efficientnet-b1")
    resnet = model_config(depth=26, width=0.25, num_classes=10)
    keys = {cache_key(cfg, 32, LatencyMethod())["model"] for cfg in (a, b, resnet)}
    assert len(keys) == 3 and cache_key(resnet, 32, LatencyMethod())["model"].startswith("layers=")
