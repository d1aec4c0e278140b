"""Fashion-MNIST from IDX files: the real Debian files where installed, and files written here."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from rsearch.data import DataConfig, load_data
from rsearch.data.config import FASHION_MNIST_DIR
from rsearch.errors import UserError


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def make_fashion_dir(folder: Path, n_train=60, n_test=20, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_plain_or_gzipped_are_read_exactly(tmp_path, compress):
    arrays = make_fashion_dir(tmp_path, compress=compress)
    splits = load_data(DataConfig(source="fashion-mnist", data_dir=str(tmp_path)), resolution=28)
    source = splits.train.source
    assert splits.in_chans == 1 and splits.num_classes == 10
    assert (splits.info["train_size"], splits.info["minival_size"], splits.info["test_size"]) == (
        50,
        10,
        20,
    )
    assert torch.equal(source.read(7), torch.from_numpy(arrays["train"][0][7])[None])
    assert source.labels.tolist() == arrays["train"][1].tolist()
    x, y = splits.test[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == 3
    assert splits.info["class_names"][9] == "Ankle boot"


def test_a_folder_without_the_idx_files_is_refused(tmp_path):
    make_fashion_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        UserError,
        match=r"--data-dir: .* has no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz",
    ):
        load_data(DataConfig(source="fashion-mnist", data_dir=str(tmp_path)), resolution=28)


def test_missing_or_empty_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"--data-dir: .*nowhere does not exist"):
        load_data(
            DataConfig(source="fashion-mnist", data_dir=str(tmp_path / "nowhere")), resolution=28
        )
    with pytest.raises(UserError, match=r"--data-dir: .* is empty"):
        load_data(DataConfig(source="fashion-mnist", data_dir=str(tmp_path)), resolution=28)


def test_truncated_idx_file_is_refused(tmp_path):
    make_fashion_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte is truncated"):
        load_data(DataConfig(source="fashion-mnist", data_dir=str(tmp_path)), resolution=28)


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR).is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_the_installed_dataset_loads_with_its_standard_split():
    splits = load_data(DataConfig(source="fashion-mnist"), resolution=32)
    info = splits.info
    assert (info["train_size"] + info["minival_size"], info["test_size"]) == (60_000, 10_000)
    assert info["minival_size"] == 1_200  # 2% of 6,000 per class
    assert np.bincount(splits.test.labels).tolist() == [1000] * 10
    assert splits.train[0][0].shape == (1, 32, 32)
