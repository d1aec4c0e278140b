"""Checkpoints: plain tensors and Python values only, so they load with weights_only=True."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

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
    # weights_only: a checkpoint is data, never code (DESIGN.md section 4).
    return torch.load(Path(path), map_location="cpu", weights_only=True)
