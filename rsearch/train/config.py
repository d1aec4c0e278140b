"""The resolved configuration of one training run (what `rsearch train` and a Tune trial run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rsearch import bounds
from rsearch.architecture import EFFICIENTNET, FAMILIES, RESNETRS, Architecture
from rsearch.bounds import FieldError
from rsearch.data import DataConfig
from rsearch.models import layers_for_depth, network_config
from rsearch.recipe import Recipe


@dataclass(frozen=True)
class TrainConfig:
    depth: float  # ResNet-RS: layers (an int); EfficientNet: the depth multiplier
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
    family: str = RESNETRS  # the model family (rsearch.architecture): what depth/width mean

    def __post_init__(self):
        # Plain FieldErrors naming the field: `rsearch train` names its flags, a trial its keys.
        if self.family not in FAMILIES:
            raise FieldError("family", f"one of {', '.join(FAMILIES)}", self.family)
        if self.family == EFFICIENTNET:
            bounds.check("depth_mult", self.depth)
            bounds.check("width_mult", self.width)
        else:
            layers_for_depth(self.depth)  # the depth rule's own bounds (rsearch.bounds)
            bounds.check("width", self.width)
        for name in ("resolution", "epochs", "workers"):
            bounds.check(name, getattr(self, name))
        if self.recipe.cuda_graphs and self.workers > 1:
            # DDP's gradient all-reduce is not captured (train/step.py): one worker per trial
            expected = "1 with cuda_graphs (the DDP all-reduce is not captured)"
            raise FieldError("workers", expected, self.workers)
        if self.recipe.batch_size % self.workers:
            expected = f"a multiple of the worker count ({self.workers})"
            raise FieldError("batch_size", expected, self.recipe.batch_size)
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise FieldError("device", "cpu, cuda or cuda:N", self.device)

    @property
    def arch(self) -> Architecture:
        return Architecture.of(self.depth, self.width, self.resolution, self.family)

    def model(self, num_classes: int, in_chans: int):
        """The network's configuration (ResNetConfig or EfficientNetConfig)."""
        return network_config(
            self.arch,
            num_classes=num_classes,
            in_chans=in_chans,
            resnet_d=self.recipe.resnet_d,
            se=self.recipe.se,
            dropout=self.recipe.dropout,
            stochastic_depth=self.recipe.stochastic_depth,
        )

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
