"""The resolved configuration of one training run (what `rsearch train` and a Tune trial run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rsearch.data import DataConfig
from rsearch.errors import UserError
from rsearch.models import ResNetConfig, layers_for_depth, model_config
from rsearch.models.resnet import TOTAL_STRIDE
from rsearch.recipe import Recipe


@dataclass(frozen=True)
class TrainConfig:
    depth: int  # network depth (published ResNet-RS table, or the depth rule)
    width: float = 1.0  # width multiplier
    resolution: int = 32  # train/eval image size
    epochs: int = 5  # the training regime
    recipe: Recipe = field(default_factory=Recipe)  # optimisation + regularization + arch switches
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0  # model init, and (with data.seed) the data order
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:N" (a Ray Train worker pins its local GPU)
    workers: int = 1  # data-parallel workers (1 = in-process loop, N = Ray Train DDP)
    loader_workers: int = 0  # DataLoader processes per training worker
    deterministic: bool = False  # torch deterministic algorithms (exact resume tests)
    eval_test: bool = True  # evaluate the test split after the last epoch
    max_steps_per_epoch: int | None = None  # cap (benchmarks, smoke runs); None = full epoch
    nan_at_step: int | None = (
        None  # fault injection for failure-handling tests: the loss turns NaN here
    )

    def __post_init__(self):
        layers_for_depth(self.depth)  # UserError below the smallest buildable depth
        if (
            isinstance(self.width, bool)
            or not isinstance(self.width, (int, float))
            or not self.width > 0
        ):
            raise UserError(f"--width: expected a number > 0, got {self.width!r}")
        if (
            isinstance(self.resolution, bool)
            or not isinstance(self.resolution, int)
            or self.resolution < TOTAL_STRIDE
        ):
            raise UserError(
                f"--resolution: expected an integer >= {TOTAL_STRIDE} (the network's total stride), "
                f"got {self.resolution!r}"
            )
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise UserError(f"--epochs: expected a positive integer, got {self.epochs!r}")
        if self.workers < 1:
            raise UserError(f"--workers: expected a positive integer, got {self.workers}")
        if self.recipe.batch_size % self.workers:
            raise UserError(
                f"--batch-size: {self.recipe.batch_size} is not divisible by --workers {self.workers}; "
                "expected a multiple of the worker count"
            )
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise UserError(f"device: expected cpu, cuda or cuda:N, got {self.device!r}")

    def model(self, num_classes: int, in_chans: int) -> ResNetConfig:
        cfg = model_config(
            depth=self.depth,
            width=self.width,
            num_classes=num_classes,
            in_chans=in_chans,
            rs=self.recipe.resnet_d,
            drop_rate=self.recipe.dropout,
            drop_path_rate=self.recipe.stochastic_depth,
        )
        return dataclasses.replace(cfg, se_ratio=0.25 if self.recipe.se else 0.0)

    @property
    def per_worker_batch(self) -> int:
        return self.recipe.batch_size // self.workers

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["recipe"] = Recipe(**d["recipe"])
        d["data"] = DataConfig(**d["data"])
        return cls(**d)
