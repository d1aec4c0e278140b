"""Fashion-MNIST from its standard IDX files (plain or .gz) in any directory.

Debian's dataset-fashion-mnist package installs the four .gz files under
/usr/share/datasets/fashion-mnist.  60,000 training and 10,000 test images, 28x28 grey.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from rsearch.data.config import FASHION_MNIST_DIR, existing_dir
from rsearch.data.source import ImageSource
from rsearch.errors import UserError

CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Pixel statistics of the training set, for normalisation.
MEAN, STD = (0.2860,), (0.3530,)
_IDX_UBYTE = 0x08  # IDX type code for unsigned bytes


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(
        f"--data-dir: {folder} has no {stem} or {stem}.gz "
        "(expected the four Fashion-MNIST IDX files)"
    )


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (http://yann.lecun.com/exdb/mnist/ format) as a uint8 array."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"--data-dir: cannot read {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise UserError(f"--data-dir: {path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UserError(
            f"--data-dir: {path} is truncated: expected {int(np.prod(shape))} bytes of data "
            f"for shape {shape}, found {body.size}"
        )
    return body.reshape(shape)


class FashionMNISTSource(ImageSource):
    in_chans = 1
    mean, std = MEAN, STD
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    def __init__(self, folder: Path, split: str):
        image_file, label_file = (_find(folder, stem) for stem in FILES[split])
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(
                f"--data-dir: {image_file.name} and {label_file.name} do not match "
                f"(shapes {images.shape} and {labels.shape})"
            )
        if labels.max(initial=0) >= self.num_classes:
            raise UserError(f"--data-dir: {label_file} has labels above {self.num_classes - 1}")
        self.images = torch.from_numpy(images.copy())
        self.labels = labels.astype(np.int64)

    def read(self, index: int) -> torch.Tensor:
        return self.images[index].unsqueeze(0).clone()


def open_fashion_mnist(cfg) -> tuple[FashionMNISTSource, FashionMNISTSource]:
    if cfg.data_dir is None and not Path(FASHION_MNIST_DIR).is_dir():
        raise UserError(
            f"--data-dir: {FASHION_MNIST_DIR} does not exist; install Debian's "
            "dataset-fashion-mnist or pass the folder holding the Fashion-MNIST IDX files"
        )
    folder = existing_dir(cfg.data_dir or FASHION_MNIST_DIR, "fashion-mnist")
    if not folder.is_dir():
        raise UserError(
            f"--data-dir: {folder} is not a directory (expected the Fashion-MNIST IDX files)"
        )
    return FashionMNISTSource(folder, "train"), FashionMNISTSource(folder, "test")
