"""The ResNet-RS model family: table entries, depth rule, regularizers, baseline, inputs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from rsearch.bounds import MIN_DEPTH, MIN_RESOLUTION, FieldError
from rsearch.models import RS_MODELS, build, layers_for_depth, model_config, parse_model_name
from rsearch.models.resnet import (
    TOTAL_STRIDE,
    Bottleneck,
    DropPath,
    ResNetConfig,
    SqueezeExcite,
    round_channels,
)

ROOT = Path(__file__).resolve().parents[1]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(**kw) -> ResNetConfig:
    kw = {"depth": 14, "width": 0.25, "num_classes": 4, **kw}
    return model_config(**kw)


# -- the published table ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", sorted(RS_MODELS))
def test_table_entry_builds_and_matches_timm_params(depth):
    timm = pytest.importorskip("timm")
    cfg = model_config(model=f"resnetrs-{depth}")
    assert cfg.layers == RS_MODELS[depth].layers and cfg.rs
    ours = build(cfg, "meta")
    assert all(p.is_meta for p in ours.parameters())  # nothing allocated
    with torch.device("meta"):
        theirs = timm.create_model(f"resnetrs{depth}")
    assert n_params(ours) == n_params(theirs)
    # Same layer names and shapes, so timm checkpoints would load.
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


def test_plain_baseline_matches_torchvision_resnet50():
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ref = torchvision.models.resnet50()
    assert n_params(build(model_config(model="resnet-50"), "meta")) == n_params(ref)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("resnetrs-50", (50, True)),
        ("resnetrs50", (50, True)),
        ("ResNetRS_101", (101, True)),
        ("resnet-50", (50, False)),
        ("resnetrs-300", (300, True)),
    ],
)
def test_model_names(name, expected):
    assert parse_model_name(name) == expected


@pytest.mark.parametrize("name", ["resnext-50", "resnetrs", "rs50", "", "resnetrs-50x"])
def test_unknown_model_name_names_the_argument(name):
    with pytest.raises(FieldError, match=r"^model: expected one of resnetrs-50, ") as error:
        model_config(model=name)
    assert error.value.field == "model" and error.value.value == name


# -- the depth rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "depth,layers",
    [
        (26, (2, 2, 2, 2)),
        (300, (4, 30, 61, 4)),
        (400, (4, 42, 83, 4)),
        (14, (1, 1, 1, 1)),
        *((depth, model.layers) for depth, model in RS_MODELS.items()),
    ],
)
def test_depth_rule_documented_values(depth, layers):
    assert layers_for_depth(depth) == layers


def test_depth_rule_any_depth():
    for depth in range(MIN_DEPTH, 600):
        layers = layers_for_depth(depth)
        assert len(layers) == 4 and min(layers) >= 1
        if depth not in RS_MODELS:  # the rule: round((depth - 2) / 3) blocks in all
            assert sum(layers) == round((depth - 2) / 3)


@pytest.mark.parametrize("depth", [13, 10, 1, 0, -5])
def test_depth_below_smallest_is_an_error(depth):
    assert MIN_DEPTH == 14
    with pytest.raises(FieldError, match=r"^depth: expected an integer in \[14, 1000\]"):
        model_config(depth=depth)
    if depth >= 0:  # through a model name, the error names the model
        with pytest.raises(FieldError, match=r"^model: .*14"):
            model_config(model=f"resnetrs-{depth}")


@pytest.mark.parametrize("width", [0, -1, 0.0, float("nan"), 100])
def test_bad_width(width):
    with pytest.raises(FieldError, match=r"^width: expected a number in \(0, 8\], got "):
        model_config(depth=50, width=width)


# -- width, input channels, resolution -------------------------------------------------------


@pytest.mark.parametrize("width", [0.25, 0.3, 0.5, 0.75, 1.0, 1.3, 1.5, 2.0])
def test_width_rounds_to_multiples_of_8(width):
    model = build(model_config(depth=50, width=width), "meta")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.out_channels % 8 == 0 for m in convs)  # stem, stages, shortcuts and SE
    assert model.layer1[0].conv1.out_channels == round_channels(64 * width)
    assert model.layer4[0].conv3.out_channels == 4 * round_channels(512 * width)


def test_round_channels():
    assert [round_channels(c) for c in (4, 8, 12, 16, 19.2, 20, 100)] == [8, 8, 16, 16, 24, 24, 104]
    assert round_channels(64 * 0.25) == 16


def test_one_channel_input():
    model = build(tiny(in_chans=1)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    assert model.conv1[0].in_channels == 1


def test_the_smallest_resolution_is_the_total_stride():
    # rsearch.bounds cannot import torch; the one minimum every layer checks is this one
    assert MIN_RESOLUTION == TOTAL_STRIDE == 32


@pytest.mark.parametrize("rs", [True, False])
@pytest.mark.parametrize("resolution", [32, 33, 47, 64, 97])
def test_any_resolution_from_32(resolution, rs):
    model = build(tiny(rs=rs)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, resolution, resolution)).shape == (2, 4)


# -- training, stochastic depth, zero-init ---------------------------------------------------


def test_tiny_config_trains_on_cpu():
    torch.manual_seed(0)
    model = build(tiny(drop_rate=0.1, drop_path_rate=0.1)).train()
    # Four classes, each a different bright quadrant, plus noise.
    y = torch.arange(32) % 4
    x = 0.3 * torch.randn(32, 3, 32, 32)
    for i, label in enumerate(y.tolist()):
        r, c = divmod(label, 2)
        x[i, :, 16 * r : 16 * r + 16, 16 * c : 16 * c + 16] += 1.0
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.6 * losses[0], losses


def test_drop_path_identity_in_eval_and_scaled_in_training():
    torch.manual_seed(0)
    drop = DropPath(0.25)
    x = torch.ones(4000, 3, 2, 2)
    assert torch.equal(drop.eval()(x), x)
    y = drop.train()(x)
    per_sample = y.flatten(1)
    kept = per_sample[:, 0] != 0
    assert torch.allclose(
        per_sample[kept], torch.tensor(1 / 0.75)
    )  # kept branches scaled by 1/keep
    assert torch.all(per_sample[~kept] == 0)  # whole samples dropped
    assert torch.all((per_sample == 0).all(1) | (per_sample != 0).all(1))
    assert kept.float().mean().item() == pytest.approx(0.75, abs=0.03)


def test_stochastic_depth_rate_per_stage_and_eval_identity():
    cfg = tiny(depth=26, drop_path_rate=0.2)
    model = build(cfg)
    for k in range(1, 5):  # stage k+1 of 5 (the stem is stage 1): rate x (k+1)/5
        for block in getattr(model, f"layer{k}"):
            assert isinstance(block.drop_path, DropPath)
            assert block.drop_path.rate == pytest.approx(0.2 * (k + 1) / 5)
    for b in model.modules():  # non-zero residual branches, so dropping one would show
        if isinstance(b, Bottleneck):
            nn.init.normal_(b.bn3.weight)
    plain = build(tiny(depth=26))
    assert all(isinstance(b.drop_path, nn.Identity) for b in plain.layer1)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), plain.eval()(x))
        model.train(), plain.train()
        assert not torch.allclose(model(x), plain(x))


@pytest.mark.parametrize("rs", [True, False])
def test_zero_init_last_bn_makes_each_block_its_shortcut(rs):
    torch.manual_seed(0)
    model = build(tiny(depth=26, rs=rs)).eval()
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert blocks and all(torch.all(b.bn3.weight == 0) for b in blocks)
    x = torch.randn(2, model.layer1[0].conv1.in_channels, 16, 16)
    with torch.no_grad():
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in stage:
                shortcut = x if block.downsample is None else block.downsample(x)
                out = block(x)
                assert torch.allclose(out, torch.relu(shortcut))
                x = out
    off = build(dataclasses.replace(tiny(depth=26, rs=rs), zero_init_last=False))
    assert all(torch.all(b.bn3.weight == 1) for b in off.modules() if isinstance(b, Bottleneck))


# -- the plain baseline ----------------------------------------------------------------------


def _structure(model: nn.Module) -> dict[str, tuple]:
    out = {}
    for name, m in model.named_modules():
        desc = (type(m).__name__,)
        if isinstance(m, nn.Conv2d):
            desc += (m.in_channels, m.out_channels, m.kernel_size, m.stride)
        out[name] = desc
    return out


def test_baseline_differs_from_rs_exactly_by_stem_shortcut_and_se():
    rs = _structure(build(model_config(depth=50), "meta"))
    base = _structure(build(model_config(depth=50, rs=False), "meta"))
    differing = {n for n in rs.keys() | base.keys() if rs.get(n) != base.get(n)}

    def part(name: str) -> str | None:
        if name.split(".")[0] in ("conv1", "maxpool"):
            return "stem"
        if ".downsample" in name:
            return "shortcut"
        if name.endswith(".se") or ".se." in name:
            return "se"
        return None

    assert {part(n) for n in differing} == {"stem", "shortcut", "se"}
    # Everything else (bottleneck convs, BNs, head) is identical.
    same = {n for n in rs if part(n) is None}
    assert same == {n for n in base if part(n) is None}
    assert all(rs[n] == base[n] for n in same)
    rs_model = build(model_config(depth=50), "meta")
    base_model = build(model_config(depth=50, rs=False), "meta")
    # The three differences, concretely.
    assert isinstance(base_model.maxpool, nn.MaxPool2d) and base_model.conv1.kernel_size == (7, 7)
    assert isinstance(rs_model.conv1, nn.Sequential) and isinstance(rs_model.maxpool[0], nn.Conv2d)
    assert isinstance(rs_model.layer2[0].downsample[0], nn.AvgPool2d)
    assert base_model.layer2[0].downsample[0].stride == (2, 2)
    assert isinstance(rs_model.layer1[0].se, SqueezeExcite) and isinstance(
        base_model.layer1[0].se, nn.Identity
    )
    assert rs_model.layer1[0].se.fc1.out_channels == 64  # 0.25 x 256 output channels


# -- the benchmark script --------------------------------------------------------------------


def test_model_step_benchmark_smoke(tmp_path, capsys):
    pytest.importorskip("timm")
    spec = importlib.util.spec_from_file_location(
        "model_step", ROOT / "benchmarks" / "model_step.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "step.json"
    assert (
        bench.main(
            [
                "--resolution",
                "32",
                "--batch",
                "2",
                "--rounds",
                "2",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert record["params"] == 35691912 and len(record["rounds"]) == 2
    assert record["summary"]["ratio_median"] > 0
    assert "ratio rsearch/timm" in capsys.readouterr().out
