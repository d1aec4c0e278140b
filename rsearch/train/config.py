"""The resolved configuration of one training run (what `rsearch train` and a Tune trial run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rsearch import bounds
from rsearch.bounds import FieldError
from rsearch.data import DataConfig
from rsearch.models import ResNetConfig, layers_for_depth, model_config
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

    def __post_init__(self):
        # Plain FieldErrors naming the field: `rsearch train` names its flags, a trial its keys.
        layers_for_depth(self.depth)  # the depth rule's own bounds (rsearch.bounds)
        for name in ("width", "resolution", "epochs", "workers"):
            bounds.check(name, getattr(self, name))
        if self.recipe.batch_size % self.workers:
            expected = f"a multiple of the worker count ({self.workers})"
            raise FieldError("batch_size", expected, self.recipe.batch_size)
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise FieldError("device", "cpu, cuda or cuda:N", self.device)

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
