"""A split as a torch Dataset: source images picked by index, transformed, normalised."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch.utils.data import Dataset

from rsearch.data.source import ImageSource
from rsearch.data.transforms import Normalize, sample_seed, seeded_rng


class SampleSet(Dataset):
    """Images `indices` of `source`; item i -> (image, label).

    Random transforms are seeded per sample by (seed, epoch, source index): the epoch comes
    with the key from a loader, or from `at_epoch` for direct indexing. `normalize` None leaves
    images uint8 (ship them to the GPU and normalise there with `Splits.normalizer`).
    """

    def __init__(
        self,
        source: ImageSource,
        indices: np.ndarray,
        transform,
        *,
        random: bool,
        normalize: Normalize | None,
        seed: int = 0,
        epoch: int = 0,
    ):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform, self.random, self.normalize = transform, random, normalize
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """key: an item number, or (item number, epoch) as loaders send it."""
        i, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        index = int(self.indices[i])
        image = self.source.read(index)
        if self.random:
            with seeded_rng(sample_seed(self.seed, epoch, index)):
                image = self.transform(image)
        else:
            image = self.transform(image)
        if self.normalize is not None:
            image = self.normalize(image)
        return image, int(self.source.labels[index])

    def at_epoch(self, seed: int, epoch: int) -> SampleSet:
        view = copy.copy(self)
        view.seed, view.epoch = seed, epoch
        return view

    @property
    def labels(self) -> np.ndarray:
        return self.source.labels[self.indices]

    def locality(self) -> np.ndarray | None:
        groups = self.source.locality()
        return None if groups is None else groups[self.indices]
