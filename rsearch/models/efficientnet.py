"""EfficientNet (Tan & Le, 2019) from torchvision's own building blocks: the second family the
ResNet-RS paper compares against, and the base of its EfficientNet-RS (the same widths and
depths at lower resolutions).

torchvision's `EfficientNet` class and its MBConv configuration (`_efficientnet_conf`: the
B0 stage table, scaled by a width and a depth multiplier) build the network, so that the
named presets are torchvision's models, parameter for parameter; rsearch adds any
multipliers, any number of classes, 1 or 3 input channels, and the recipe's dropout and
stochastic depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

from rsearch.architecture import EFFICIENTNET as FAMILY
from rsearch.bounds import FIELDS, FieldError
from rsearch.models.registry import EFFICIENTNET_PRESETS as PRESETS


@dataclass(frozen=True)
class EfficientNetConfig:
    width_mult: float = 1.0  # channels of every stage x this (rounded to multiples of 8)
    depth_mult: float = 1.0  # blocks of every stage x this (rounded up)
    num_classes: int = 10
    in_chans: int = 3
    dropout: float = 0.2  # before the classifier
    stochastic_depth: float = 0.2  # the last block's drop probability (linear in block index)

    def cache_key(self) -> str:
        """What decides its inference cost, as the latency cache names it."""
        return (
            f"family={FAMILY};width_mult={self.width_mult:g};depth_mult={self.depth_mult:g};"
            f"in_chans={self.in_chans};classes={self.num_classes}"
        )

    @property
    def name(self) -> str:
        """The preset's name where the multipliers are a preset's, else the multipliers."""
        for name, preset in PRESETS.items():
            if (preset.width_mult, preset.depth_mult) == (self.width_mult, self.depth_mult):
                return name
        return f"efficientnet-w{self.width_mult:g}-d{self.depth_mult:g}"

    def __post_init__(self):
        for name in ("width_mult", "depth_mult", "num_classes", "dropout", "stochastic_depth"):
            FIELDS[name].check(name, getattr(self, name))
        if self.in_chans not in (1, 3):
            raise FieldError("in_chans", "1 or 3", self.in_chans)


def efficientnet_config(model: str | None = None, **fields) -> EfficientNetConfig:
    """A named preset (`efficientnet-b0` ... `efficientnet-b7`, its multipliers and dropout),
    with `fields` overriding it; or, without a name, the multipliers given."""
    if model is None:
        return EfficientNetConfig(**fields)
    preset = PRESETS.get(model)
    if preset is None:
        raise FieldError("model", f"one of {', '.join(PRESETS)}", model)
    named = {"width_mult": preset.width_mult, "depth_mult": preset.depth_mult}
    return EfficientNetConfig(**{**named, "dropout": preset.dropout, **fields})


def build(cfg: EfficientNetConfig, device: torch.device | str | None = None) -> EfficientNet:
    """The network of `cfg`, with torchvision's initialisation (on `device`; "meta" allocates
    no weights, as the cost model wants)."""
    with torch.device(device or "cpu"):
        stages, last_channel = _efficientnet_conf(
            "efficientnet_b0", width_mult=cfg.width_mult, depth_mult=cfg.depth_mult
        )
        model = EfficientNet(
            stages,
            cfg.dropout,
            stochastic_depth_prob=cfg.stochastic_depth,
            num_classes=cfg.num_classes,
            last_channel=last_channel,
        )
        if cfg.in_chans != 3:  # torchvision's stem takes RGB; the same conv for one channel
            stem = model.features[0][0]
            conv = nn.Conv2d(cfg.in_chans, stem.out_channels, 3, stride=2, padding=1, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out")  # as torchvision inits its convs
            model.features[0][0] = conv
    return model
