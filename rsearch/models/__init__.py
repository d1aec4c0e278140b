"""The ResNet-RS model family: one generic class (resnet.py) and the names/depth rule (registry.py)."""
from rsearch.models.registry import (
    RS_LAYERS,
    layers_for_depth,
    model_config,
    parse_model_name,
    regularization_defaults,
)
from rsearch.models.resnet import TOTAL_STRIDE, ResNet, ResNetConfig, build

__all__ = [
    "RS_LAYERS", "TOTAL_STRIDE", "ResNet", "ResNetConfig", "build", "layers_for_depth",
    "model_config", "parse_model_name", "regularization_defaults",
]
