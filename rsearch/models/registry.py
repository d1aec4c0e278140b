"""Names a user can type, and the block-count rule for any depth.

Published block counts (Bello et al. 2021, table 7) are used where the table has an
entry.  Any other depth uses one rule (documented in README "Models"):

    n = round((depth - 2) / 3) bottleneck blocks in total (3 convs each + stem + head)
    n < 12:  spread evenly over the 4 stages, the remainder to stage 3, then stage 2
             (depth 26 -> (2, 2, 2, 2), timm's resnet26)
    n >= 12: outer stages get 3 blocks (4 from depth 270 up, as RS-270/350/420 do),
             the middle stages split the rest about 1:2 (stage 2 gets round(rest / 3))
             (depth 300 -> (4, 30, 61, 4), depth 400 -> (4, 42, 83, 4))
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rsearch import bounds

# Re-exported: the data sources, the latency method and the recipe read the bounds from here.
from rsearch.bounds import (
    FIELDS,
    MAX_BATCH,
    MAX_CLASSES,
    MAX_DEPTH,
    MAX_RESOLUTION,
    MAX_WIDTH,
    MIN_DEPTH,
    FieldError,
)

# resnet.py imports torch: the names and bounds here are read by commands that never build a model
if TYPE_CHECKING:
    from rsearch.models.resnet import ResNetConfig

__all__ = [
    "EFFICIENTNET_PRESETS",
    "EfficientNetPreset",
    "efficientnet_regularization_defaults",
    "randaugment_magnitude_for_resolution",
    "MAX_BATCH",
    "MAX_CLASSES",
    "MAX_DEPTH",
    "MAX_RESOLUTION",
    "MAX_WIDTH",
    "MIN_DEPTH",
    "RS_MODELS",
    "RSModel",
    "layers_for_depth",
    "model_config",
    "parse_model_name",
    "regularization_defaults",
]


@dataclass(frozen=True)
class RSModel:
    """A released ResNet-RS model: its blocks per stage, and the per-size settings it was
    trained with (Bello et al. 2021, table 7)."""

    layers: tuple[int, int, int, int]
    image_size: int
    dropout: float
    stochastic_depth: float
    randaugment_magnitude: int


# depth -> the published model of that depth.
RS_MODELS: dict[int, RSModel] = {
    50: RSModel((3, 4, 6, 3), 160, 0.25, 0.0, 10),
    101: RSModel((3, 4, 23, 3), 192, 0.25, 0.0, 15),
    152: RSModel((3, 8, 36, 3), 224, 0.25, 0.0, 15),
    200: RSModel((3, 24, 36, 3), 256, 0.25, 0.1, 15),
    270: RSModel((4, 29, 53, 4), 256, 0.25, 0.1, 15),
    350: RSModel((4, 36, 72, 4), 256, 0.25, 0.1, 15),
    420: RSModel((4, 44, 87, 4), 320, 0.4, 0.1, 15),
}

_NAME = re.compile(r"^(resnetrs|resnet)[-_]?(\d+)$")
_NAMES_EXPECTED = (
    f"one of {', '.join(f'resnetrs-{d}' for d in RS_MODELS)} "
    "(or resnetrs-<depth>, resnet-<depth> for the plain baseline)"
)


def layers_for_depth(depth: int) -> tuple[int, int, int, int]:
    """Blocks per stage for `depth` (the published table first, then the rule above)."""
    if depth in RS_MODELS and not isinstance(depth, bool):
        return RS_MODELS[depth].layers
    bounds.check("depth", depth)
    n = round((depth - 2) / 3)
    if n < 12:
        base, extra = divmod(n, 4)
        layers = [base] * 4
        for stage in (2, 1, 3)[:extra]:
            layers[stage] += 1
        return tuple(layers)  # type: ignore[return-value]
    outer = 4 if depth >= 270 else 3
    rest = n - 2 * outer
    middle2 = round(rest / 3)
    return (outer, middle2, rest - middle2, outer)


def regularization_defaults(depth: int) -> dict:
    """The paper's per-size defaults for a depth: those of the nearest published model below
    (or RS-50's for smaller nets).  Weight decay 4e-5 goes with dropout/stochastic depth."""
    nearest = RS_MODELS[max([d for d in RS_MODELS if d <= depth], default=50)]
    return {
        "image_size": nearest.image_size,
        "dropout": nearest.dropout,
        "stochastic_depth": nearest.stochastic_depth,
        "randaugment_magnitude": nearest.randaugment_magnitude,
    }


# --- EfficientNet (Tan & Le 2019): torchvision's efficientnet_b0 ... b7 ---
@dataclass(frozen=True)
class EfficientNetPreset:
    """One of torchvision's efficientnet_b0 ... b7: its multipliers, evaluation size, dropout."""

    width_mult: float
    depth_mult: float
    resolution: int  # torchvision's evaluation crop (the EfficientNet paper's resolution)
    dropout: float  # before the classifier


EFFICIENTNET_PRESETS: dict[str, EfficientNetPreset] = {
    "efficientnet-b0": EfficientNetPreset(1.0, 1.0, 224, 0.2),
    "efficientnet-b1": EfficientNetPreset(1.0, 1.1, 240, 0.2),
    "efficientnet-b2": EfficientNetPreset(1.1, 1.2, 288, 0.3),
    "efficientnet-b3": EfficientNetPreset(1.2, 1.4, 300, 0.3),
    "efficientnet-b4": EfficientNetPreset(1.4, 1.8, 380, 0.4),
    "efficientnet-b5": EfficientNetPreset(1.6, 2.2, 456, 0.4),
    "efficientnet-b6": EfficientNetPreset(1.8, 2.6, 528, 0.5),
    "efficientnet-b7": EfficientNetPreset(2.0, 3.1, 600, 0.5),
}

# Blocks per stage of EfficientNet-B0 (torchvision's _efficientnet_conf, the paper's table 1);
# a depth multiplier d gives ceil(n x d) blocks to each stage (torchvision's adjust_depth).
EFFICIENTNET_B0_BLOCKS = (1, 2, 2, 3, 3, 4, 1)


def efficientnet_blocks(depth_mult: float) -> int:
    """An EfficientNet's depth: its MBConv blocks (B0 16, B7 55)."""
    return sum(math.ceil(n * depth_mult) for n in EFFICIENTNET_B0_BLOCKS)


# EfficientNet's drop_connect rate for every model (the official efficientnet_builder.py).
EFFICIENTNET_STOCHASTIC_DEPTH = 0.2


def randaugment_magnitude_for_resolution(resolution: int) -> int:
    """RandAugment's magnitude by image size, as the paper sets it for EfficientNet-RS
    (Bello et al. 2021, appendix): 10 up to 224 px, 15 up to 320 px, 20 above."""
    return 10 if resolution <= 224 else 15 if resolution <= 320 else 20


def efficientnet_regularization_defaults(depth_mult: float, resolution: int) -> dict:
    """The per-size defaults of an EfficientNet: the dropout of the nearest preset at or below
    its depth multiplier (B0's below), drop_connect 0.2, RandAugment by resolution."""
    nearest = max(
        (p for p in EFFICIENTNET_PRESETS.values() if p.depth_mult <= depth_mult),
        key=lambda p: p.depth_mult,
        default=EFFICIENTNET_PRESETS["efficientnet-b0"],
    )
    return {
        "dropout": nearest.dropout,
        "stochastic_depth": EFFICIENTNET_STOCHASTIC_DEPTH,
        "randaugment_magnitude": randaugment_magnitude_for_resolution(resolution),
    }


def parse_model_name(name: str) -> tuple[int, bool]:
    """'resnetrs-50' / 'resnetrs50' / 'resnet-50' -> (depth, is_rs)."""
    m = _NAME.match(name.strip().lower()) if isinstance(name, str) else None
    if not m:
        raise FieldError("model", _NAMES_EXPECTED, name)
    depth = int(m.group(2))
    return depth, m.group(1) == "resnetrs"


def model_config(
    *,
    model: str | None = None,
    depth: int | None = None,
    width: float = 1.0,
    num_classes: int = 1000,
    in_chans: int = 3,
    rs: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> ResNetConfig:
    """Resolve a model name or a depth/width pair into a validated ResNetConfig.
    Raises FieldError naming the field (model, depth, width, num_classes, in_chans)."""
    from rsearch.models.resnet import ResNetConfig  # torch: only where a config is built

    if model is not None:
        depth, rs = parse_model_name(model)
    if depth is None:
        raise TypeError("model_config: a model name or a depth is required")
    bounds.check("width", width)
    bounds.check("num_classes", num_classes)
    if in_chans not in (1, 3):
        raise FieldError("in_chans", "1 or 3", in_chans)
    try:
        layers = layers_for_depth(depth)
    except FieldError:
        if model is None:
            raise
        # A name that parses but is no buildable model: the name is what the user wrote.
        expected = f"a model whose depth is {FIELDS['depth'].expected()}"
        raise FieldError("model", expected, model) from None
    prefix = "resnetrs" if rs else "resnet"
    name = f"{prefix}-{depth}" + ("" if width == 1.0 else f"-w{width:g}")
    return ResNetConfig(
        layers=layers,
        width=float(width),
        num_classes=num_classes,
        in_chans=in_chans,
        rs=rs,
        se_ratio=0.25 if rs else 0.0,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        name=name,
    )
