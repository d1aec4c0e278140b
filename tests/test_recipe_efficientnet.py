"""The `efficientnet` recipe preset: RMSProp, the staircase exponential LR schedule, EfficientNet's
hyperparameters, per-model `sized` defaults -- and the ResNet-RS presets left as they were."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rsearch.bounds import FieldError
from rsearch.recipe import ADDITIVE_PRESETS, PRESETS, Recipe, preset
from rsearch.train.optim import LRSchedule, make_optimizer


def tiny_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 2 * 2, 3)
    )


# --- the optimizer ---------------------------------------------------------------------------


def test_rmsprop_has_efficientnets_settings_and_the_usual_decay_groups():
    model = tiny_model()
    opt = make_optimizer(model, preset("efficientnet", batch_size=512))
    assert type(opt) is torch.optim.RMSprop
    decay, no_decay = opt.param_groups
    for group in (decay, no_decay):
        assert group["alpha"] == 0.9 and group["eps"] == 1e-3 and group["momentum"] == 0.9
        assert group["lr"] == pytest.approx(0.016 * 512 / 256)
        assert not group["centered"]
    assert decay["weight_decay"] == 1e-5 and all(p.ndim > 1 for p in decay["params"])
    assert no_decay["weight_decay"] == 0 and all(p.ndim <= 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_rmsprop_step_is_torchs_rule_with_those_settings():
    """One real step: mean square 0.1 g^2 (alpha 0.9), then w -= lr g / (sqrt(ms) + 1e-3)."""
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.zero_()  # weight decay x 0 adds nothing to the gradient
    opt = make_optimizer(layer, Recipe(optimizer="rmsprop", batch_size=256, base_lr=0.01))
    layer(torch.ones(1, 1)).sum().backward()  # gradient 1
    opt.step()
    assert layer.weight.item() == pytest.approx(-0.01 / (math.sqrt(0.1) + 1e-3))


def test_sgd_is_still_the_default_nesterov_momentum():
    opt = make_optimizer(tiny_model(), Recipe())
    assert type(opt) is torch.optim.SGD
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in opt.param_groups)


# --- the exponential schedule ---------------------------------------------------------------


EXPONENTIAL = Recipe(schedule="exponential", batch_size=256, base_lr=0.1, warmup_epochs=5)


def test_exponential_schedule_warms_up_then_drops_097_every_24_epochs():
    sched = LRSchedule(EXPONENTIAL, steps_per_epoch=10, epochs=100)  # warm-up: 50 steps
    assert sched(0) == pytest.approx(0.1 / 50) and sched(49) == pytest.approx(0.1)
    assert sched(50) == pytest.approx(0.1)  # warm-up end: the peak
    assert sched(73) == pytest.approx(0.1)  # 2.3 epochs after: still the first stair
    assert sched(74) == pytest.approx(0.097)  # 2.4 epochs after: one decay
    assert sched(97) == pytest.approx(0.097) and sched(98) == pytest.approx(0.1 * 0.97**2)
    assert sched(50 + 240) == pytest.approx(0.1 * 0.97**10)
    lrs = [sched(s) for s in range(50, 1000)]
    assert len(set(lrs)) == math.floor(949 / 24) + 1  # a staircase: one value per 24 steps


def test_exponential_schedule_reads_the_decay_fields_and_the_clipped_warmup():
    recipe = EXPONENTIAL.replace(lr_decay_rate=0.5, lr_decay_epochs=1.5)
    sched = LRSchedule(recipe, steps_per_epoch=10, epochs=10)  # warm-up clipped to 20 steps
    assert sched(19) == pytest.approx(0.1) and sched(20) == pytest.approx(0.1)
    assert sched(34) == pytest.approx(0.1) and sched(35) == pytest.approx(0.05)
    assert sched(50) == pytest.approx(0.025)


def test_decay_fields_leave_cosine_and_step_alone():
    for schedule in ("cosine", "step"):
        plain = LRSchedule(Recipe(schedule=schedule), steps_per_epoch=10, epochs=10)
        other = LRSchedule(
            Recipe(schedule=schedule, lr_decay_rate=0.5, lr_decay_epochs=0.1),
            steps_per_epoch=10,
            epochs=10,
        )
        assert [plain(s) for s in range(100)] == [other(s) for s in range(100)]


# --- the preset ---------------------------------------------------------------------------


# The EfficientNet paper's B0 recipe, one line per concern as RS_50 below.
# fmt: off
EFFICIENTNET_B0 = dict(
    optimizer="rmsprop", momentum=0.9, nesterov=False, base_lr=0.016, weight_decay=1e-5,
    warmup_epochs=5.0, schedule="exponential", lr_decay_rate=0.97, lr_decay_epochs=2.4,
    ema_decay=0.9999, label_smoothing=0.1, dropout=0.2, stochastic_depth=0.2, randaugment_ops=2,
    randaugment_magnitude=10,
)
# fmt: on


def test_efficientnet_preset_is_the_papers_training():
    recipe = preset("efficientnet")
    assert {k: getattr(recipe, k) for k in EFFICIENTNET_B0} == EFFICIENTNET_B0
    # everything else stays at the Recipe defaults (ResNet-D / SE do not apply to EfficientNet)
    assert recipe == Recipe(**EFFICIENTNET_B0)
    assert preset("efficientnet", batch_size=4096).peak_lr() == pytest.approx(0.256)  # the paper
    assert preset("efficientnet", depth=200) == recipe  # depth is a ResNet notion
    assert "efficientnet" in PRESETS and "efficientnet" not in ADDITIVE_PRESETS


def test_sized_replaces_the_per_model_defaults_and_overrides_still_win():
    b7 = {"dropout": 0.5, "stochastic_depth": 0.3, "randaugment_magnitude": 28}
    recipe = preset("efficientnet", sized=b7)
    assert (recipe.dropout, recipe.stochastic_depth, recipe.randaugment_magnitude) == (0.5, 0.3, 28)
    assert recipe.optimizer == "rmsprop" and recipe.weight_decay == 1e-5
    assert preset("efficientnet", sized=b7, dropout=0.1).dropout == 0.1
    # the ResNet presets take `sized` in place of the depth's defaults too
    rs = preset("rs", depth=50, sized=b7)
    assert (rs.dropout, rs.stochastic_depth, rs.randaugment_magnitude) == (0.5, 0.3, 28)
    base = preset("baseline", depth=50, sized=b7)
    assert (base.dropout, base.stochastic_depth, base.randaugment_magnitude) == (0.0, 0.0, 28)


def test_weight_decay_fallback_is_for_the_resnet_presets_only():
    off = {"dropout": 0.0, "stochastic_depth": 0.0, "randaugment_magnitude": 10}
    assert preset("efficientnet", sized=off).weight_decay == 1e-5
    assert preset("rs", depth=50, sized=off).weight_decay == 1e-4


# --- the ResNet-RS presets, unchanged ----------------------------------------------------


# One line per concern: optimizer, schedule, regularization, architecture, speed.
# fmt: off
RS_50 = Recipe(
    batch_size=128, base_lr=0.1, momentum=0.9, nesterov=True, optimizer="sgd", weight_decay=4e-5,
    warmup_epochs=5.0, schedule="cosine", lr_decay_rate=0.97, lr_decay_epochs=2.4,
    label_smoothing=0.1, dropout=0.25, stochastic_depth=0.0, randaugment_ops=2,
    randaugment_magnitude=10, ema_decay=0.9999,
    resnet_d=True, se=True,
    bf16=True, channels_last=True, compile=False, cuda_graphs=False,
)
# fmt: on


def test_recipe_defaults_and_the_rs_preset_are_unchanged():
    assert Recipe() == RS_50  # the defaults are RS-50's recipe
    assert preset("rs", depth=50) == RS_50
    assert preset("rs") == RS_50
    assert preset("rs", depth=200) == RS_50.replace(stochastic_depth=0.1, randaugment_magnitude=15)


def test_additive_presets_keep_the_studys_order_and_values():
    assert ADDITIVE_PRESETS == [
        "baseline",
        "+cosine",
        "+longer",
        "+ema",
        "+label_smoothing",
        "+stochastic_depth",
        "+randaugment",
        "+dropout",
        "+lower_wd",
        "+se",
        "rs",
    ]
    assert PRESETS == [*ADDITIVE_PRESETS, "efficientnet"]
    # The baseline is the paper's ResNet: a step schedule, wd 1e-4, no regularization, no
    # ResNet-D or SE; everything else is the RS recipe (its RandAugment magnitude unused).
    baseline = preset("baseline", depth=200)
    changed = {f for f in vars(RS_50) if getattr(baseline, f) != getattr(RS_50, f)}
    differs = "schedule weight_decay label_smoothing dropout ema_decay randaugment_ops"
    assert changed == {*differs.split(), "randaugment_magnitude", "resnet_d", "se"}
    assert (baseline.schedule, baseline.weight_decay, baseline.randaugment_ops) == ("step", 1e-4, 0)
    assert not any((baseline.label_smoothing, baseline.dropout, baseline.stochastic_depth))
    assert not any((baseline.ema_decay, baseline.resnet_d, baseline.se))
    assert all(preset(name).optimizer == "sgd" for name in ADDITIVE_PRESETS)
    assert all(preset(name).schedule in ("cosine", "step") for name in ADDITIVE_PRESETS)


# --- refused values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("optimizer", "adam"),
        ("schedule", "linear"),
        ("lr_decay_rate", 0),
        ("lr_decay_rate", 1.5),
        ("lr_decay_epochs", 0),
        ("lr_decay_epochs", -2.4),
    ],
)
def test_bad_values_are_field_errors_naming_the_field(field, value):
    with pytest.raises(FieldError) as info:
        Recipe(**{field: value})
    assert info.value.field == field and str(info.value).startswith(f"{field}: expected ")
    with pytest.raises(FieldError, match=f"^{field}: "):
        preset("efficientnet", **{field: value})


def test_edge_values_are_accepted():
    assert Recipe(lr_decay_rate=1.0).lr_decay_rate == 1.0  # 1: no decay
    assert Recipe(schedule="exponential", optimizer="rmsprop").schedule == "exponential"


def test_unknown_preset_lists_efficientnet():
    with pytest.raises(FieldError) as info:
        preset("effnet")
    assert info.value.field == "preset" and info.value.expected.endswith(", rs, efficientnet")
