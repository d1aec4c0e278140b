"""Checkpoints: plain tensors and Python values only, so they load with weights_only=True."""

from __future__ import annotations

import dataclasses
import os
import pickle
import tempfile
from pathlib import Path

import torch

from rsearch.data.config import DataConfig
from rsearch.errors import UserError
from rsearch.recipe import Recipe
from rsearch.train.config import TrainConfig

# TrainConfig fields added after runs were stored without them (issue #12: the model family).
_ADDED = ("family",)

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write atomically: a killed process never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's state; a file that is not one (truncated, foreign, or holding
    anything but tensors and plain values) is a one-line UserError naming it."""
    try:
        # weights_only: a checkpoint is data, never code (DESIGN.md section 4).
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"--resume: {path} is not a readable rsearch checkpoint ({reason[:100]})"
        ) from None
    if not isinstance(state, dict):
        raise UserError(
            f"--resume: {path} is not an rsearch checkpoint (holds {type(state).__name__})"
        )
    return state


def same_run(config: dict) -> dict:
    """What must match for a checkpoint to continue a run: its config minus the device index
    (a Ray Train worker records "cuda:0" for "cuda"), minus fields that today's TrainConfig
    no longer has and that an older version stored unset (None): they changed nothing; and
    with today's default for each field (or recipe field) an older version did not have yet:
    its runs were trained with what is now that default (a ResNet-RS, SGD)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kept = {key: value for key, value in config.items() if key in fields or value is not None}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in _ADDED}
    for section, default in (("recipe", Recipe()), ("data", DataConfig())):
        if isinstance(kept.get(section), dict):  # a field added since: today's default
            kept[section] = {**dataclasses.asdict(default), **kept[section]}
    return {**defaults, **kept, "device": str(config.get("device", "")).split(":")[0]}
