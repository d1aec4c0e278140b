"""Training: the loop (loop.py, no Ray), its config, checkpoints, and the Ray Train path
(distributed.py)."""

from rsearch.train.config import TrainConfig
from rsearch.train.loop import EpochResult, TrainingDiverged, train_epochs

__all__ = ["EpochResult", "TrainConfig", "TrainingDiverged", "train_epochs"]
