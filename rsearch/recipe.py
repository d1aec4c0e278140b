"""The training recipe: one dataclass, one field per knob, and the paper's presets.

Presets (Bello et al. 2021, table 1, the additive study on ResNet-200):
    baseline         the plain ResNet training the paper starts from
                     (step LR, weight decay 1e-4, no regularizers)
    +cosine          cosine LR schedule
    +longer          longer training (the study's epoch count is the user's `epochs`)
    +ema             EMA of weights, evaluation on the EMA
    +label_smoothing label smoothing 0.1
    +stochastic_depth stochastic depth
    +randaugment     RandAugment
    +dropout         dropout before the classifier
    +lower_wd        weight decay 4e-5 (the full training recipe)
    +se              squeeze-and-excitation
    rs               + ResNet-D: the full ResNet-RS recipe and architecture
Each preset includes every step before it.  `rs` is the default.

Outside the study, `efficientnet` is EfficientNet's own training (Tan & Le 2019): RMSProp and
an exponential LR decay.  The ResNet-RS paper trains EfficientNet-RS with it, while ResNet-RS
keeps its own recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rsearch import architecture, bounds
from rsearch.bounds import FieldError
from rsearch.models.registry import regularization_defaults


@dataclass(frozen=True)
class Recipe:
    # --- optimisation ---
    batch_size: int = 128  # global batch (split evenly over workers)
    base_lr: float = 0.1  # peak LR per 256 images: peak = base_lr x batch_size / 256
    momentum: float = 0.9  # SGD momentum (Nesterov, as the official code), or RMSProp's
    nesterov: bool = True
    weight_decay: float = 4e-5  # 1e-4 is right only while dropout and stochastic depth are off
    warmup_epochs: float = 5.0  # linear warmup, in epochs (clipped to 1/5 of short runs)
    schedule: str = "cosine"  # "cosine", "step" (x0.1 at 30%, 60%, 90%) or "exponential"
    optimizer: str = "sgd"  # "sgd" (momentum above, Nesterov) or "rmsprop" (EfficientNet's)
    # "exponential" only: after warm-up, LR x lr_decay_rate every lr_decay_epochs (staircase)
    lr_decay_rate: float = 0.97
    lr_decay_epochs: float = 2.4
    # --- regularization ---
    label_smoothing: float = 0.1
    dropout: float = 0.25  # before the classifier
    stochastic_depth: float = 0.0  # drop rate of the last stage (per-stage linear rule)
    randaugment_ops: int = 2  # RandAugment number of ops (0 = off)
    randaugment_magnitude: int = 10  # RandAugment magnitude (0..30, paper uses 10 / 15)
    ema_decay: float = 0.9999  # 0 = no EMA; warmed up as min(decay, (1+t)/(10+t))
    # --- architecture switches the additive study toggles ---
    resnet_d: bool = True  # ResNet-D stem and shortcut
    se: bool = True  # squeeze-and-excitation (ratio 0.25)
    # --- precision/speed (no effect on the maths on CPU) ---
    bf16: bool = True  # bf16 autocast on GPU
    channels_last: bool = True  # NHWC on GPU
    compile: bool = False  # torch.compile the model
    # the whole training step (forward .. optimizer, EMA) captured in a CUDA graph and replayed:
    # one worker on a GPU; on a CPU the same step runs uncaptured (train/step.py)
    cuda_graphs: bool = False

    def __post_init__(self):
        # Every field's rule is in rsearch.bounds; the space schema and the commands say which
        # key or flag set a refused field.
        for f in dataclasses.fields(self):
            bounds.check(f.name, getattr(self, f.name))

    def peak_lr(self) -> float:
        return self.base_lr * self.batch_size / 256

    def replace(self, **changes) -> Recipe:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(
                f"{sorted(unknown)[0]}: unknown recipe field; expected one of "
                + ", ".join(f.name for f in dataclasses.fields(self))
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The recipe's numeric knobs the paper tunes per model size on minival: a space's
# `regularization` section searches them, and `rsearch train` has a flag for each.
REGULARIZATION_KNOBS = (
    "dropout",
    "stochastic_depth",
    "label_smoothing",
    "randaugment_magnitude",
    "randaugment_ops",
    "weight_decay",
    "ema_decay",
    "base_lr",
    "momentum",
    "warmup_epochs",
)

# The paper's additive study, in order; each step adds its changes to all before it.
ADDITIVE_STEPS: list[tuple[str, dict]] = [
    (
        "baseline",
        dict(
            schedule="step",
            weight_decay=1e-4,
            label_smoothing=0.0,
            dropout=0.0,
            stochastic_depth=0.0,
            randaugment_ops=0,
            ema_decay=0.0,
            resnet_d=False,
            se=False,
        ),
    ),
    ("+cosine", dict(schedule="cosine")),
    ("+longer", dict()),  # the epoch count itself is a search dimension, not a recipe field
    ("+ema", dict(ema_decay=0.9999)),
    ("+label_smoothing", dict(label_smoothing=0.1)),
    ("+stochastic_depth", dict(stochastic_depth=None)),  # None = the per-size default
    ("+randaugment", dict(randaugment_ops=2)),
    ("+dropout", dict(dropout=None)),
    ("+lower_wd", dict(weight_decay=4e-5)),
    ("+se", dict(se=True)),
    ("rs", dict(resnet_d=True)),
]
# The study's steps in order (the ablation space grids exactly these).
ADDITIVE_PRESETS = [name for name, _ in ADDITIVE_STEPS]

# EfficientNet's training (Tan & Le 2019, section 5.2; tensorflow/tpu
# models/official/efficientnet: main.py's flags, utils.build_learning_rate / build_optimizer).
# Per-model values (dropout, stochastic depth, RandAugment magnitude) come from `sized`.
EFFICIENTNET: dict = dict(
    optimizer="rmsprop",  # RMSProp decay 0.9, momentum 0.9, epsilon 1e-3 (train.optim)
    momentum=0.9,
    nesterov=False,  # SGD-only; RMSProp has no Nesterov variant here
    base_lr=0.016,  # paper: 0.256 at batch 4096 = main.py's base_learning_rate 0.016 per 256
    warmup_epochs=5.0,  # build_learning_rate's warmup_epochs
    schedule="exponential",  # decay_factor 0.97 every decay_epochs 2.4, staircase=True
    lr_decay_rate=0.97,
    lr_decay_epochs=2.4,
    weight_decay=1e-5,  # main.py's weight_decay (L2 on all but batch norm)
    ema_decay=0.9999,  # main.py's moving_average_decay
    label_smoothing=0.1,  # main.py's label_smoothing
    randaugment_ops=2,  # main.py's randaug_num_layers
)
# B0's per-model values, used when no `sized` is given: dropout_rate 0.2 (efficientnet_builder),
# drop_connect_rate 0.2, randaug_magnitude 10 (main.py's defaults).
EFFICIENTNET_B0_SIZED = {"dropout": 0.2, "stochastic_depth": 0.2, "randaugment_magnitude": 10}

# What a space's recipe.preset and `rsearch train --recipe` accept.
PRESETS = [*ADDITIVE_PRESETS, "efficientnet"]
# The recipe a family trains with unless the space names a preset: the paper trains
# EfficientNet-RS with EfficientNet's own hyperparameters, ResNet-RS with its own.
DEFAULT_PRESETS = {architecture.RESNETRS: "rs", architecture.EFFICIENTNET: "efficientnet"}

_PER_SIZE_KEYS = ("dropout", "stochastic_depth", "randaugment_magnitude")


def preset(name: str, depth: int = 50, *, sized: dict | None = None, **overrides) -> Recipe:
    """The recipe of preset `name`, with per-size defaults, then `overrides`.

    The per-size defaults (dropout, stochastic depth, RandAugment magnitude grow with model
    size) are `sized` when given, else the ResNet-RS paper's for `depth` (EfficientNet-B0's for
    the `efficientnet` preset, which ignores `depth`)."""
    if name not in PRESETS:
        raise FieldError("preset", f"one of {', '.join(PRESETS)}", name)
    if sized is None:
        sized = EFFICIENTNET_B0_SIZED if name == "efficientnet" else regularization_defaults(depth)
    per_size = {key: sized[key] for key in _PER_SIZE_KEYS}
    if name == "efficientnet":  # no 1e-4 fallback below: 1e-5 is EfficientNet's own value
        return Recipe().replace(**{**EFFICIENTNET, **per_size, **overrides})
    values: dict = {"randaugment_magnitude": per_size["randaugment_magnitude"]}
    for step, changes in ADDITIVE_STEPS:
        for key, value in changes.items():
            values[key] = per_size[key] if value is None else value
        if step == name:
            break
    values.update(overrides)
    # Weight decay 4e-5 belongs with dropout / stochastic depth; without them the usual 1e-4
    # is right (paper section 3) -- unless the user set it explicitly.
    if (
        "weight_decay" not in overrides
        and values.get("dropout", 0.25) == 0
        and values.get("stochastic_depth", 0) == 0
    ):
        values["weight_decay"] = 1e-4
    return Recipe().replace(**values)
