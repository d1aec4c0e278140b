"""ImageFolder trees, the ImageNet layout: train/<class>/*.jpg|png|..., optional val/ (or test/).

Classes are the sorted sub-folder names of train/; val/ may hold a subset of them.
Images are decoded with torchvision.io.decode_image to uint8 RGB (grey and RGBA converted).

Bad files are caught at load time as cheaply as the set allows (verify_images="auto"):
every image decoded for small sets (<= DECODE_ALL), every file's header and end marker
checked for mid-size ones (<= CHECK_ALL), a seeded sample of CHECK_SAMPLE files beyond.
Whatever slips through fails on first read with a message naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from rsearch.data.config import existing_dir
from rsearch.data.images import EXTENSIONS, check_file, decode_rgb, read_file
from rsearch.data.source import ImageSource
from rsearch.errors import UserError

DECODE_ALL, CHECK_ALL, CHECK_SAMPLE = 500, 50_000, 5_000
TEST_FOLDERS = ("val", "test")


def list_images(folder: Path) -> list[str]:
    """Image files under `folder` (recursively, following links), sorted."""
    found = []
    for root, _dirs, files in os.walk(folder, followlinks=True):
        found.extend(os.path.join(root, f) for f in files if f.lower().endswith(EXTENSIONS))
    return sorted(found)


def class_folders(split_dir: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in os.scandir(split_dir)
        if entry.is_dir() and not entry.name.startswith(".")
    )


class ImageFolderSource(ImageSource):
    def __init__(self, split_dir: Path, class_names: list[str]):
        self.class_names, self.num_classes = class_names, len(class_names)
        paths, labels = [], []
        for label, name in enumerate(class_names):
            if not (split_dir / name).is_dir():
                continue  # a val/ folder may lack some classes
            files = list_images(split_dir / name)
            paths.extend(files)
            labels.extend([label] * len(files))
        self.paths = np.array(paths, dtype=object)
        self.labels = np.array(labels, dtype=np.int64)

    def read(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        return decode_rgb(read_file(path), path)

    def verify(self, mode: str, seed: int) -> None:
        """Fail now, naming the file, on images that can't be read (see module docstring)."""
        n = len(self.paths)
        if mode == "none":
            return
        if mode == "decode" or (mode == "auto" and n <= DECODE_ALL):
            for i in range(n):
                self.read(i)
            return
        chosen = range(n)
        if mode == "auto" and n > CHECK_ALL:
            chosen = np.random.default_rng(seed).choice(n, CHECK_SAMPLE, replace=False)
        for i in chosen:
            check_file(self.paths[i])


def open_imagefolder(cfg) -> tuple[ImageFolderSource, ImageFolderSource | None]:
    root = existing_dir(cfg.data_dir, "imagefolder")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise UserError(
            f"--data-dir: {root} has no train/ folder (expected train/<class>/<images>, "
            "optional val/)"
        )
    names = class_folders(train_dir)
    if len(names) < 2:
        raise UserError(
            f"--data-dir: {train_dir} has {len(names)} class folder(s) "
            f"({', '.join(names) or 'none'}); a classifier needs at least 2"
        )
    train = ImageFolderSource(train_dir, names)
    counts = np.bincount(train.labels, minlength=len(names))
    if counts.min() == 0:
        empty = [n for n, c in zip(names, counts) if c == 0]
        raise UserError(
            f"--data-dir: class folder(s) {', '.join(empty)} in {train_dir} hold no images "
            f"({', '.join(EXTENSIONS)})"
        )
    train.verify(cfg.verify_images, cfg.seed)
    test = None
    for folder in TEST_FOLDERS:
        if (root / folder).is_dir():
            unknown = sorted(set(class_folders(root / folder)) - set(names))
            if unknown:
                raise UserError(
                    f"--data-dir: {root / folder} has class folder(s) not in train/: "
                    f"{', '.join(unknown[:5])}"
                )
            test = ImageFolderSource(root / folder, names)
            if len(test) == 0:
                raise UserError(f"--data-dir: {root / folder} holds no images")
            test.verify(cfg.verify_images, cfg.seed)
            break
    return train, test
