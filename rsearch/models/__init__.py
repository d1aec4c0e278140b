"""The ResNet-RS model family: one generic class (resnet.py) and the names/depth rule (registry.py);
the EfficientNet family, from torchvision's blocks (efficientnet.py, imported by name).

resnet.py (torch) is imported on first use of one of its names: the CLI reads the registry's
names and bounds for every command, and `rsearch analyze` / `dashboard` never build a model
(torch loaded beside pyarrow also makes a quick exit abort now and then).
"""

import dataclasses

from rsearch.bounds import FieldError
from rsearch.models.registry import (
    RS_MODELS,
    RSModel,
    layers_for_depth,
    model_config,
    parse_model_name,
    regularization_defaults,
)

_RESNET_NAMES = ("TOTAL_STRIDE", "ResNet", "ResNetConfig")


def network_config(
    arch,
    *,
    num_classes: int,
    in_chans: int,
    resnet_d: bool = True,
    se: bool = True,
    dropout: float = 0.0,
    stochastic_depth: float = 0.0,
):
    """The model configuration of an Architecture of either family: the one builder that the
    trial, the cost table and the dry run share (so they name one latency-cache key).
    `resnet_d` and `se` are the additive study's ResNet switches; EfficientNet has its own."""
    from rsearch.architecture import EFFICIENTNET, FAMILIES, RESNETRS

    io_shape = dict(num_classes=num_classes, in_chans=in_chans)
    if arch.family == EFFICIENTNET:
        from rsearch.models.efficientnet import EfficientNetConfig  # torch, on first use

        # EfficientNet's depth and width are the compound multipliers of B0.
        multipliers = dict(depth_mult=arch.depth, width_mult=arch.width)
        return EfficientNetConfig(
            **multipliers, **io_shape, dropout=dropout, stochastic_depth=stochastic_depth
        )
    if arch.family != RESNETRS:
        raise FieldError("family", f"one of {', '.join(FAMILIES)}", arch.family)
    regularization = dict(rs=resnet_d, drop_rate=dropout, drop_path_rate=stochastic_depth)
    cfg = model_config(depth=arch.depth, width=arch.width, **io_shape, **regularization)
    return dataclasses.replace(cfg, se_ratio=0.25 if se else 0.0)


def build(cfg, device=None):
    """The network of a ResNet-RS (ResNetConfig) or an EfficientNet (EfficientNetConfig)."""
    # torch and torchvision, on first use (see above)
    from rsearch.models import efficientnet, resnet

    if isinstance(cfg, efficientnet.EfficientNetConfig):
        return efficientnet.build(cfg, device)
    return resnet.build(cfg, device)


def __getattr__(name: str):
    if name in _RESNET_NAMES:
        from rsearch.models import resnet  # torch, on first use (see above)

        return getattr(resnet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RS_MODELS",
    "RSModel",
    "TOTAL_STRIDE",
    "ResNet",
    "ResNetConfig",
    "build",
    "layers_for_depth",
    "model_config",
    "network_config",
    "parse_model_name",
    "regularization_defaults",
]
