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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rsearch import bounds
from rsearch.bounds import FieldError
from rsearch.models.registry import regularization_defaults


@dataclass(frozen=True)
class Recipe:
    # --- optimisation ---
    batch_size: int = 128  # global batch (split evenly over workers)
    base_lr: float = 0.1  # peak LR per 256 images: peak = base_lr x batch_size / 256
    momentum: float = 0.9  # SGD momentum (Nesterov, as the official code)
    nesterov: bool = True
    weight_decay: float = 4e-5  # 1e-4 is right only while dropout and stochastic depth are off
    warmup_epochs: float = 5.0  # linear warmup, in epochs (clipped to 1/5 of short runs)
    schedule: str = "cosine"  # "cosine" or "step" (x0.1 at 30%, 60%, 90% of training)
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
PRESETS = [name for name, _ in ADDITIVE_STEPS]


def preset(name: str, depth: int = 50, **overrides) -> Recipe:
    """The recipe of preset `name` for a model of `depth`, with per-size defaults from the paper
    (dropout, stochastic depth, RandAugment magnitude grow with model size), then `overrides`."""
    if name not in PRESETS:
        raise FieldError("preset", f"one of {', '.join(PRESETS)}", name)
    sized = regularization_defaults(depth)
    per_size = {
        "dropout": sized["dropout"],
        "stochastic_depth": sized["stochastic_depth"],
        "randaugment_magnitude": sized["randaugment_magnitude"],
    }
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
