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
from typing import TYPE_CHECKING

from rsearch.errors import UserError

# resnet.py imports torch: the names and bounds here are read by commands that never build a model
if TYPE_CHECKING:
    from rsearch.models.resnet import ResNetConfig

# depth -> blocks per stage, as published for ResNet-RS.
RS_LAYERS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    270: (4, 29, 53, 4),
    350: (4, 36, 72, 4),
    420: (4, 44, 87, 4),
}

# Per-model settings of the released ResNet-RS models:
# depth -> (image size, dropout, stochastic depth, RandAugment magnitude).
RS_DEFAULTS: dict[int, tuple[int, float, float, int]] = {
    50: (160, 0.25, 0.0, 10),
    101: (192, 0.25, 0.0, 15),
    152: (224, 0.25, 0.0, 15),
    200: (256, 0.25, 0.1, 15),
    270: (256, 0.25, 0.1, 15),
    350: (256, 0.25, 0.1, 15),
    420: (320, 0.4, 0.1, 15),
}

MIN_DEPTH = 14  # one block per stage
# Upper bounds, checked before anything is allocated: far beyond the paper's largest
# models (depth 420, width 2, 448 px, ImageNet-21k's 21,841 classes), small enough that a
# typo (depth 10^9, a label of 10^9) is an error instead of hours of work or terabytes.
MAX_DEPTH = 1000
MAX_WIDTH = 8.0
MAX_RESOLUTION = 1024
MAX_CLASSES = 100_000
MAX_BATCH = 65_536
_NAME = re.compile(r"^(resnetrs|resnet)[-_]?(\d+)$")


def layers_for_depth(depth: int) -> tuple[int, int, int, int]:
    """Blocks per stage for `depth` (the published table first, then the rule above)."""
    if depth in RS_LAYERS:
        return RS_LAYERS[depth]
    if depth < MIN_DEPTH:
        raise UserError(
            f"--depth: must be at least {MIN_DEPTH} (one bottleneck per stage), got {depth}"
        )
    if depth > MAX_DEPTH:
        raise UserError(f"--depth: must be at most {MAX_DEPTH}, got {depth}")
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
    key = max([d for d in RS_DEFAULTS if d <= depth], default=50)
    size, dropout, drop_path, magnitude = RS_DEFAULTS[key]
    return {
        "image_size": size,
        "dropout": dropout,
        "stochastic_depth": drop_path,
        "randaugment_magnitude": magnitude,
    }


def parse_model_name(name: str) -> tuple[int, bool]:
    """'resnetrs-50' / 'resnetrs50' / 'resnet-50' -> (depth, is_rs)."""
    m = _NAME.match(name.strip().lower())
    if not m:
        known = ", ".join(f"resnetrs-{d}" for d in RS_LAYERS)
        raise UserError(
            f"--model: unknown model {name!r}; expected one of {known} "
            "(or resnetrs-<depth>, resnet-<depth> for the plain baseline)"
        )
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
    """Resolve a model name or a depth/width pair into a validated ResNetConfig."""
    from rsearch.models.resnet import ResNetConfig

    if model is not None:
        depth, rs = parse_model_name(model)
    if depth is None:
        raise UserError("--model or --depth: one is required")
    if not isinstance(width, (int, float)) or not 0 < width <= MAX_WIDTH:
        raise UserError(f"--width: must be a number in (0, {MAX_WIDTH}], got {width!r}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise UserError(f"--classes: must be an integer in [2, {MAX_CLASSES:,}], got {num_classes}")
    if in_chans not in (1, 3):
        raise UserError(f"in_chans: must be 1 or 3, got {in_chans}")
    try:
        layers = layers_for_depth(int(depth))
    except UserError:
        if model is None:
            raise
        raise UserError(
            f"--model: {model!r} is too shallow; the smallest buildable depth is {MIN_DEPTH} "
            "(one bottleneck per stage)"
        ) from None
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
