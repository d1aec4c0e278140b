"""One generic ResNet: ResNet-RS (ResNet-D + SE) and the plain ResNet baseline.

Architecture (Bello et al. 2021, section 4.1, and DESIGN.md section 1):
- RS stem: three 3x3 convs (32 s2, 32, 64 channels, BN+ReLU each); the max-pool is
  replaced by a 3x3 stride-2 conv (64) + BN + ReLU.  Baseline stem: 7x7 s2 + max-pool.
- Bottleneck blocks (expansion 4, stride on the 3x3 conv).  After the last 1x1 conv:
  BN (gamma zero-initialised) -> SE -> stochastic depth -> add shortcut -> ReLU.
- RS downsampling shortcut (ResNet-D): 2x2 avg-pool stride 2, then 1x1 conv + BN.
- SE in every block: squeeze to 0.25 x the block's output channels, ReLU, sigmoid.
- Stochastic depth: one rate per stage, rate x k/5 for stages k = 2..5 (the official
  TF code's rule; the stem is "stage 1"), so the last stage drops at `rate x 5/5`.
- Head: global average pool -> dropout -> linear.

Optional parts are decided in `__init__` (torchvision style): `forward` has no
config lookups.  Layer names follow timm's `ResNet` so state dicts line up.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor`, never below it, never >10% down
    (the usual make_divisible rule used by timm and the TF reference)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class ResNetConfig:
    """Everything that decides the network's shape and its regularizers."""

    layers: tuple[int, int, int, int]  # bottleneck blocks per stage
    width: float = 1.0  # multiplier on stem and stage widths (rounded to multiples of 8)
    num_classes: int = 1000
    in_chans: int = 3  # 1 for grey images (Fashion-MNIST), 3 for RGB
    # ResNet-D deep stem + avg-pool shortcut (True) vs the plain 7x7 stem / strided shortcut
    rs: bool = True
    se_ratio: float = 0.25  # SE bottleneck, fraction of the block's output channels (0 = no SE)
    drop_rate: float = 0.0  # dropout before the classifier
    drop_path_rate: float = 0.0  # stochastic depth rate of the last stage
    zero_init_last: bool = True  # zero gamma of each block's last BN
    name: str = field(default="", compare=False)  # display name only

    @property
    def depth(self) -> int:
        """Counted the usual way: 3 convs per bottleneck, plus stem conv and classifier."""
        return 3 * sum(self.layers) + 2

    def cache_key(self) -> str:
        """What decides its inference cost, as the latency cache names it (stored: keep it)."""
        layers = ",".join(str(n) for n in self.layers)
        return (
            f"layers={layers};width={self.width:g};rs={self.rs};se={self.se_ratio:g};"
            f"in_chans={self.in_chans};classes={self.num_classes}"
        )


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid gate."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        reduced = round_channels(channels * ratio)
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(self.act(self.fc1(s)))
        return x * s.sigmoid()


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch per sample, scale kept ones by 1/keep."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self):
        return f"rate={self.rate:.3f}"


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, act: bool = True) -> list[nn.Module]:
    mods: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        mods.append(nn.ReLU(inplace=True))
    return mods


def shortcut(cin: int, cout: int, stride: int, avg_down: bool) -> nn.Module:
    """Projection shortcut; ResNet-D average-pools before the 1x1 conv instead of striding it."""
    if avg_down:
        pool = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        return nn.Sequential(pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class Bottleneck(nn.Module):
    def __init__(
        self,
        cin: int,
        planes: int,
        stride: int,
        downsample: nn.Module | None,
        se_ratio: float,
        drop_path: float,
    ):
        super().__init__()
        cout = planes * EXPANSION
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.se = SqueezeExcite(cout, se_ratio) if se_ratio > 0 else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        x = self.drop_path(self.se(x))
        x += shortcut  # in place, as timm does: one activation fewer to allocate
        return self.act3(x)


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        self.cfg = cfg
        w = lambda c: round_channels(c * cfg.width)  # noqa: E731
        stem_out = w(64)
        if cfg.rs:
            # Deep stem (ResNet-D / Inception-style) with the max-pool replaced by a strided conv.
            self.conv1 = nn.Sequential(
                *conv_bn(cfg.in_chans, w(32), 3, stride=2),
                *conv_bn(w(32), w(32), 3),
                nn.Conv2d(w(32), stem_out, 3, padding=1, bias=False),
            )
            self.maxpool = nn.Sequential(*conv_bn(stem_out, stem_out, 3, stride=2))
        else:
            self.conv1 = nn.Conv2d(cfg.in_chans, stem_out, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(stem_out)
        self.act1 = nn.ReLU(inplace=True)

        cin = stem_out
        se_ratio = (
            cfg.se_ratio
        )  # 0 = no SE (the plain baseline; the additive study's step before +SE)
        for index, (blocks, base) in enumerate(zip(cfg.layers, STAGE_WIDTHS)):
            planes = w(base)
            stride = 1 if index == 0 else 2
            # One rate per stage: stage k (k = 2..5, the stem is stage 1) drops at rate x k/5.
            drop_path = cfg.drop_path_rate * (index + 2) / 5
            stage = []
            for b in range(blocks):
                s = stride if b == 0 else 1
                down = None
                if b == 0 and (s != 1 or cin != planes * EXPANSION):
                    down = shortcut(cin, planes * EXPANSION, s, avg_down=cfg.rs)
                stage.append(Bottleneck(cin, planes, s, down, se_ratio, drop_path))
                cin = planes * EXPANSION
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.num_features = cin
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(cin, cfg.num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.cfg.zero_init_last:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)  # each block starts as the identity

    def forward_features(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        x = self.global_pool(self.forward_features(x)).flatten(1)
        return self.fc(self.drop(x))


# Total stride of the network: every model needs at least this many pixels per side.
TOTAL_STRIDE = 32


def build(cfg: ResNetConfig, device: torch.device | str | None = None) -> ResNet:
    """Build on `device` ("meta" builds without allocating weights, for counting)."""
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return ResNet(cfg)
