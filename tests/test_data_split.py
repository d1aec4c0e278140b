"""The minival split: deterministic, seeded, stratified, disjoint from train; bad settings
refused."""

import numpy as np
import pytest

from rsearch.bounds import FieldError
from rsearch.data import DataConfig
from rsearch.data.split import fingerprint, minival_indices, train_minival
from rsearch.errors import UserError

# Four classes of very different sizes, interleaved.
LABELS = np.random.default_rng(1).permutation(np.repeat(np.arange(4), [500, 300, 100, 30]))


def test_same_seed_same_split_and_other_seed_other_split():
    a = minival_indices(LABELS, 0.02, seed=7)
    assert np.array_equal(a, minival_indices(LABELS, 0.02, seed=7))
    b = minival_indices(LABELS, 0.02, seed=8)
    assert not np.array_equal(a, b)
    assert fingerprint(a) == fingerprint(a[::-1].copy())  # order of the indices does not matter
    assert fingerprint(a) != fingerprint(b)


def test_minival_is_disjoint_from_train_and_together_they_cover_everything():
    train, minival = train_minival(LABELS, 0.02, seed=0)
    assert not set(train) & set(minival)
    assert np.array_equal(np.sort(np.concatenate([train, minival])), np.arange(len(LABELS)))


def test_minival_is_stratified_by_class():
    minival = minival_indices(LABELS, 0.02, seed=0)
    per_class = np.bincount(LABELS[minival], minlength=4)
    # round(0.02 x count), at least one per class
    assert per_class.tolist() == [10, 6, 2, 1]
    minival = minival_indices(LABELS, 0.2, seed=0)
    assert np.bincount(LABELS[minival], minlength=4).tolist() == [100, 60, 20, 6]


def test_a_class_with_one_image_cannot_be_split():
    labels = np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(UserError, match=r"class 2 has 1 training image.*at least 2 per class"):
        minival_indices(labels, 0.02, seed=0)
    with pytest.raises(UserError, match=r"class 'cat' has 1"):
        minival_indices(labels, 0.02, seed=0, class_names=["ant", "bee", "cat"])


def test_two_images_per_class_leave_one_to_train_on():
    labels = np.array([0, 0, 1, 1])
    train, minival = train_minival(labels, 0.5, seed=3)
    assert sorted(labels[minival].tolist()) == [0, 1]
    assert sorted(labels[train].tolist()) == [0, 1]


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1.0, "2%"])
def test_minival_fraction_outside_zero_to_half_is_refused(fraction):
    with pytest.raises(FieldError, match=r"^minival_fraction: expected a number in \(0, 0.5\]"):
        DataConfig(minival_fraction=fraction)


def test_minival_fraction_bounds_that_are_allowed():
    assert DataConfig(minival_fraction=0.5).minival_fraction == 0.5
    assert DataConfig(minival_fraction=0.001).minival_fraction == 0.001


def test_unknown_source_is_refused_with_the_known_ones():
    with pytest.raises(
        FieldError,
        match=r"^source: expected one of synthetic, fashion-mnist, imagefolder, "
        r"parquet, got 'cifar'",
    ):
        DataConfig(source="cifar")
