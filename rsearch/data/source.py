"""What every data source provides: labels up front, uint8 images on demand."""

from __future__ import annotations

import numpy as np
import torch

# Per-channel statistics used to normalise images (ImageNet's, the usual default for RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageSource:
    """One split of one source.

    Subclasses set `labels` (int64 array, one per image), `num_classes`, `class_names`
    (or None), `in_chans`, `mean`/`std`, and implement `read`.  Everything must survive
    a fork into DataLoader workers: open files lazily, per process.
    """

    labels: np.ndarray
    num_classes: int
    class_names: list[str] | None = None
    in_chans: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, index: int) -> torch.Tensor:
        """Image `index` as a uint8 tensor (in_chans, H, W)."""
        raise NotImplementedError

    def locality(self) -> np.ndarray | None:
        """Per-image group id where reading images of one group together is much cheaper
        (Parquet row groups); None where any order is as cheap as another."""
        return None
