"""rsearch: ResNet-RS training and scaling search on Ray Tune."""

__version__ = "0.1.0"
