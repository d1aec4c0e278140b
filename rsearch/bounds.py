"""One rule per user-settable field: its type, its bounds, and the words that describe them.

The table is read by the space schema (rsearch.space.fields), by the commands' argparse types
(rsearch.commands.args) and by the inner dataclasses (TrainConfig, Recipe, the model
registry). Inner code raises a FieldError: a plain ValueError that names the field, never a
flag or a key path. The edges -- the space schema, the commands -- know which key or flag set
the field, and say so in the one wording of every user message:

    KEY: expected ..., got ...       (scaling.resolution: ..., --resolution: ...)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

MIN_DEPTH = 14  # one bottleneck per stage
# The network's total stride (rsearch.models.resnet.TOTAL_STRIDE, which imports torch; the
# model tests check the two agree): the last stage is 1 x 1 at this size.
MIN_RESOLUTION = 32
# Upper bounds, checked before anything is allocated: far beyond the paper's largest
# models (depth 420, width 2, 448 px, ImageNet-21k's 21,841 classes), small enough that a
# typo (depth 10^9, a label of 10^9) is an error instead of hours of work or terabytes.
MAX_DEPTH = 1000
MAX_WIDTH = 8.0
MAX_RESOLUTION = 1024
MAX_CLASSES = 100_000
MAX_BATCH = 65_536


def is_number(value: Any) -> bool:
    """int or float (numpy's too), never bool (YAML `true` is not a number)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


_TYPE_TEST = {
    "int": is_integer,
    "float": is_number,
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
}
TYPE_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
}


class FieldError(ValueError):
    """A value a field refuses. `named(key)` is the edge's message for the key or flag that
    set the field; str() names the field itself (for library callers)."""

    def __init__(self, field: str, expected: str, value: Any):
        self.field, self.expected, self.value = field, expected, value
        super().__init__(self.named(field))

    def named(self, key: str) -> str:
        return f"{key}: expected {self.expected}, got {self.value!r}"


@dataclass(frozen=True)
class Bound:
    """What one field accepts: a type, and a range (numbers) or a set of options (strings)."""

    type: str  # int | float | str | bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, ... rather than [low, ...
    high_open: bool = False
    options: tuple[str, ...] = ()
    why: str = ""  # the reason for the bound, said after it: "(one bottleneck per stage)"

    def expected(self) -> str:
        """'an integer in [14, 1000] (one bottleneck per stage)', 'one of cosine, step', ..."""
        if self.options:
            text = f"one of {', '.join(self.options)}"
        elif self.low is None:
            text = TYPE_EXPECTED[self.type]
        elif self.high is None:
            sign = ">" if self.low_open else ">="
            text = f"{TYPE_EXPECTED[self.type]} {sign} {self._shown(self.low)}"
        else:
            opening, closing = "(["[not self.low_open], ")]"[not self.high_open]
            interval = f"{opening}{self._shown(self.low)}, {self._shown(self.high)}{closing}"
            text = f"{TYPE_EXPECTED[self.type]} in {interval}"
        return f"{text} ({self.why})" if self.why else text

    def _shown(self, limit: float) -> str:
        """A bound as the message writes it: 0.5, 1e-05; integers in full, grouped by thousands
        from 10,000 on (1024, 65,536, 4,294,967,295)."""
        if self.type != "int":
            return f"{limit:g}"
        return f"{int(limit):,}" if abs(limit) >= 10_000 else str(int(limit))

    def has_type(self, value: Any) -> bool:
        return _TYPE_TEST[self.type](value)

    def in_range(self, value: Any) -> bool:
        """For a value of the right type: inside the bounds (or one of the options)?"""
        if self.options:
            return value in self.options
        if self.type == "float" and not math.isfinite(value):
            return False  # inf would pass a bound without a high end; NaN fails them all anyway
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def accepts(self, value: Any) -> bool:
        return self.has_type(value) and self.in_range(value)

    def check(self, field: str, value: Any) -> Any:
        """`value`, or FieldError naming `field`."""
        if not self.accepts(value):
            raise FieldError(field, self.expected(), value)
        return value


def _fraction() -> Bound:
    return Bound("float", 0, 1, high_open=True)


# field -> its rule. Keys are the fields' own names (TrainConfig, Recipe, model_config).
FIELDS: dict[str, Bound] = {
    # --- the architecture: the three scaling dimensions, and the head ---
    "depth": Bound("int", MIN_DEPTH, MAX_DEPTH, why="one bottleneck per stage"),
    "width": Bound("float", 0, MAX_WIDTH, low_open=True),
    "resolution": Bound(
        "int", MIN_RESOLUTION, MAX_RESOLUTION, why="at least the network's total stride"
    ),
    "num_classes": Bound("int", 2, MAX_CLASSES),  # the classifier's outputs
    # EfficientNet's compound-scaling multipliers (B0 is 1.0 and 1.0, B7 2.0 and 3.1)
    "width_mult": Bound("float", 0, MAX_WIDTH, low_open=True),
    "depth_mult": Bound("float", 0, MAX_WIDTH, low_open=True),
    # --- a training run ---
    "epochs": Bound("int", 1),
    "workers": Bound("int", 1),
    # --- the recipe (rsearch.recipe.Recipe): optimisation ---
    "batch_size": Bound("int", 1, MAX_BATCH),
    "base_lr": Bound("float", 0, 10, low_open=True),
    "momentum": _fraction(),
    "nesterov": Bound("bool"),
    "weight_decay": Bound("float", 0, 1),
    "warmup_epochs": Bound("float", 0, 1e6),
    "schedule": Bound("str", options=("cosine", "step", "exponential")),
    "optimizer": Bound("str", options=("sgd", "rmsprop")),
    "lr_decay_rate": Bound("float", 0, 1, low_open=True),  # 1: no decay; 0 would zero the LR
    "lr_decay_epochs": Bound("float", 0, 1e6, low_open=True),
    # --- the recipe: regularization ---
    "label_smoothing": _fraction(),
    "dropout": _fraction(),
    "stochastic_depth": _fraction(),
    "randaugment_ops": Bound("int", 0, 10),
    "randaugment_magnitude": Bound("int", 0, 30),
    "ema_decay": _fraction(),
    # --- the recipe: architecture switches and precision ---
    "resnet_d": Bound("bool"),
    "se": Bound("bool"),
    "bf16": Bound("bool"),
    "channels_last": Bound("bool"),
    "compile": Bound("bool"),
    "cuda_graphs": Bound("bool"),
}


# field -> its rule, for the fields of a latency measurement method (rsearch.cost.LatencyMethod;
# the space's constraints.latency_ms section and `rsearch cost`'s flags set them).
LATENCY_FIELDS: dict[str, Bound] = {
    "device": Bound("str", options=("cpu", "cuda")),
    "dtype": Bound("str", options=("float32", "bfloat16")),
    "batch_size": FIELDS["batch_size"],  # images per forward call
    "warmup": Bound("int", 0, 10_000),  # untimed calls before timing
    "repeats": Bound("int", 1, 10_000),  # interleaved rounds
    "min_run_time": Bound("float", 0, 60, low_open=True, why="seconds of timed calls per round"),
    "channels_last": Bound("bool"),
    "compile": Bound("bool"),
    "cuda_graphs": Bound("bool"),
    "threads": Bound("int", 1),  # torch threads while measuring (CPU); None: torch's default
    "backend": Bound("str", options=("torch", "onnxruntime")),  # what runs the model
}
# field -> its rule, for the fields of the training data (rsearch.data.DataConfig; the space's
# data section and `rsearch train`'s data flags set them).
DATA_SOURCES = ("synthetic", "fashion-mnist", "imagefolder", "parquet")
MAX_MINIVAL_FRACTION = 0.5
DATA_FIELDS: dict[str, Bound] = {
    "source": Bound("str", options=DATA_SOURCES),
    "train_size": Bound("int", 1),  # synthetic
    "test_size": Bound("int", 0),  # synthetic; 0: no test set
    "seed": Bound("int", 0),  # synthetic rendering and the minival split
    "minival_fraction": Bound("float", 0, MAX_MINIVAL_FRACTION, low_open=True),  # paper: 2%
    "crop_min_scale": Bound("float", 0, 1, low_open=True),  # random-resized-crop's lower area
    "verify_images": Bound("str", options=("auto", "decode", "header", "none")),
    "minival_in_train": Bound("bool"),
    "decode": Bound("str", options=("cpu", "device")),
}
# Compilation and CUDA-graph capture happen in the first calls, which are never timed.
MIN_COMPILED_WARMUP = 3


def check(field: str, value: Any) -> Any:
    """`value` if FIELDS[field] accepts it, else FieldError naming `field`."""
    return FIELDS[field].check(field, value)
