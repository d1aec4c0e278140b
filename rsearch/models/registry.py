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
