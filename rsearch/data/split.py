"""The minival split: a deterministic, seeded, stratified slice of the training split.

Per class, round(fraction x count) images (at least 1, at most count - 1) are held out;
which ones is drawn from a generator seeded by the seed alone, so the same seed gives
the same split on every machine, and a trial never trains on what it is tuned on.
"""

from __future__ import annotations

import hashlib

import numpy as np

from rsearch.errors import UserError

_STREAM = 0x5E1EC7  # separates the split's random stream from other users of the same seed


def minival_indices(
    labels: np.ndarray, fraction: float, seed: int, class_names: list[str] | None = None
) -> np.ndarray:
    """Sorted indices (into `labels`) of the held-out minival images."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, _STREAM])
    chosen = []
    classes, counts = np.unique(labels, return_counts=True)
    by_class = np.split(np.argsort(labels, kind="stable"), np.cumsum(counts)[:-1])
    for cls, count, members in zip(classes, counts, by_class):
        if count < 2:
            name = class_names[cls] if class_names else int(cls)
            raise UserError(
                f"data: class {name!r} has {count} training image; the stratified minival "
                "split needs at least 2 per class (1 held out, 1 to train on)"
            )
        take = min(count - 1, max(1, round(fraction * count)))
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, np.int64)


def fingerprint(indices: np.ndarray) -> str:
    """Short sha256 of the sorted indices: equal fingerprints mean the same split."""
    data = np.sort(np.asarray(indices, dtype="<i8")).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def train_minival(
    labels: np.ndarray, fraction: float, seed: int, class_names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, minival indices), disjoint and together covering every image."""
    held_out = minival_indices(labels, fraction, seed, class_names)
    keep = np.ones(len(labels), bool)
    keep[held_out] = False
    return np.flatnonzero(keep), held_out
