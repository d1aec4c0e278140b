"""The embedded synthetic dataset: deterministic, cached, resolution-independent, configurable."""

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rsearch.bounds import FieldError
from rsearch.data import DataConfig, load_data
from rsearch.data.synthetic import (
    MAX_CLASSES,
    SLOTS,
    cached_render,
    class_attributes,
    render,
    render_size,
)
from rsearch.errors import UserError


def test_same_seed_same_images_other_seed_or_split_other_images():
    a_images, a_labels = render(12, 10, 19, seed=5)
    b_images, b_labels = render(12, 10, 19, seed=5)
    assert np.array_equal(a_images, b_images) and np.array_equal(a_labels, b_labels)
    c_images, _ = render(12, 10, 19, seed=6)
    t_images, _ = render(12, 10, 19, seed=5, split="test")
    assert not np.array_equal(a_images, c_images)
    assert not np.array_equal(a_images, t_images)


def test_images_do_not_depend_on_how_rendering_is_chunked():
    whole, _ = render(9, 10, 19, seed=1)
    chunked, _ = render(
        9, 10, 19, seed=1, pixels_per_chunk=19 * 19 * SLOTS * 2
    )  # two images at a time
    assert np.array_equal(whole, chunked)


def test_the_same_scenes_at_every_resolution():
    small, small_labels = render(16, 10, 24, seed=2)
    large, large_labels = render(16, 10, 48, seed=2)
    assert np.array_equal(small_labels, large_labels)
    down = F.avg_pool2d(torch.from_numpy(large).float(), 2)
    same = (down - torch.from_numpy(small).float()).abs().mean()
    other = (down - torch.from_numpy(small).float().roll(1, 0)).abs().mean()
    assert same < 0.3 * other


def test_classes_are_balanced_and_named(tmp_path):
    _, labels = render(60, 20, 16, seed=0)
    assert np.bincount(labels).tolist() == [3] * 20
    shapes, textures, counts = class_attributes(np.arange(MAX_CLASSES))
    assert (
        len(set(zip(shapes, textures, counts))) == MAX_CLASSES
    )  # every class is a distinct combination
    splits = load_data(
        DataConfig(num_classes=12, train_size=48, test_size=12, cache_dir=str(tmp_path)),
        resolution=16,
    )
    assert splits.num_classes == 12 and splits.in_chans == 3
    assert splits.info["class_names"][:2] == ["solid circle", "solid square"]
    assert splits.info["class_names"][5] == "stripes circle"


def test_the_render_is_cached_on_disk_and_reused(tmp_path):
    images, labels = cached_render(tmp_path, 20, 10, 19, 0, "train")
    files = list((tmp_path / "synthetic").glob("*/images.npy"))
    assert len(files) == 1
    stamp = os.stat(files[0]).st_mtime_ns
    again, again_labels = cached_render(tmp_path, 20, 10, 19, 0, "train")
    assert isinstance(again, np.memmap)  # read from the file, not rendered
    assert os.stat(files[0]).st_mtime_ns == stamp
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    cached_render(tmp_path, 20, 10, 19, 1, "train")  # another seed is another entry
    assert len(list((tmp_path / "synthetic").glob("*/images.npy"))) == 2
    assert not list((tmp_path / "synthetic").glob(".tmp-*"))


def test_load_data_reports_sizes_and_renders_at_the_eval_crop_size(tmp_path):
    splits = load_data(
        DataConfig(train_size=100, test_size=20, seed=3, cache_dir=str(tmp_path)), resolution=24
    )
    info = splits.info
    assert (info["train_size"], info["minival_size"], info["test_size"]) == (90, 10, 20)
    assert info["seed"] == 3 and len(info["minival_fingerprint"]) == 16
    assert splits.train.source.images.shape[-1] == render_size(24) == 28
    assert splits.test[0][0].shape == (3, 24, 24)
    assert not set(splits.train.indices) & set(splits.minival.indices)


def test_a_pickled_split_refers_to_the_cache_instead_of_copying_the_pixels(tmp_path):
    splits = load_data(
        DataConfig(train_size=200, test_size=0, cache_dir=str(tmp_path)), resolution=64
    )
    payload = pickle.dumps(splits.train)  # what a spawned DataLoader worker receives
    assert len(payload) < 20_000 < splits.train.source.images.nbytes
    copy = pickle.loads(payload)
    assert torch.equal(copy.at_epoch(0, 2)[7][0], splits.train.at_epoch(0, 2)[7][0])


def test_the_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RSEARCH_CACHE", str(tmp_path / "env-cache"))
    load_data(DataConfig(train_size=20, test_size=0), resolution=16)
    assert list((tmp_path / "env-cache" / "synthetic").glob("*/labels.npy"))


@pytest.mark.parametrize("classes", [1, MAX_CLASSES + 1])
def test_class_counts_outside_the_renderable_range_are_refused(tmp_path, classes):
    with pytest.raises(
        UserError, match=rf"data.num_classes: the synthetic source has 2 to {MAX_CLASSES} classes"
    ):
        load_data(DataConfig(num_classes=classes, cache_dir=str(tmp_path)), resolution=16)


def test_bad_sizes_and_resolutions_are_refused(tmp_path):
    with pytest.raises(FieldError, match="^train_size: expected an integer >= 1"):
        DataConfig(train_size=0)
    # The data layer names the field; the edge that set it (a flag, a space key) says which.
    with pytest.raises(FieldError, match="^resolution: expected an integer >= 8"):
        load_data(DataConfig(cache_dir=str(tmp_path)), resolution=4)
    with pytest.raises(
        FieldError, match=r"^randaugment_magnitude: expected an integer in \[0, 30\]"
    ):
        load_data(DataConfig(cache_dir=str(tmp_path)), resolution=16, randaugment_magnitude=31)
