"""The ResNet-RS model family: one generic class (resnet.py) and the names/depth rule (registry.py);
the EfficientNet family, from torchvision's blocks (efficientnet.py, imported by name).

resnet.py (torch) is imported on first use of one of its names: the CLI reads the registry's
names and bounds for every command, and `rsearch analyze` / `dashboard` never build a model
(torch loaded beside pyarrow also makes a quick exit abort now and then).
"""

from rsearch.models.registry import (
    RS_MODELS,
    RSModel,
    layers_for_depth,
    model_config,
    parse_model_name,
    regularization_defaults,
)

_RESNET_NAMES = ("TOTAL_STRIDE", "ResNet", "ResNetConfig")


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
    "parse_model_name",
    "regularization_defaults",
]
