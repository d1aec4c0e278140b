"""load_data: a DataConfig and a resolution in, train/minival/test datasets out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rsearch import bounds, storage
from rsearch.bounds import FieldError
from rsearch.data.config import FASHION_MNIST_DIR, DataConfig, cache_root
from rsearch.data.dataset import SampleSet
from rsearch.data.source import ImageSource
from rsearch.data.split import fingerprint, train_minival
from rsearch.data.transforms import EvalTransform, Normalize, train_transform

# The smallest image the data layer renders and transforms. It is not the model's minimum
# (rsearch.bounds: 32, the network's total stride), which every edge checks before data is
# loaded: the data layer never builds a model, and its tests load 16 px images because they
# render fast (Fashion-MNIST's own are 28 px).
MIN_IMAGE_SIZE = 8


@dataclass
class Splits:
    train: SampleSet  # training split minus minival, train transforms
    minival: SampleSet  # the held-out slice of the training split, eval transforms
    test: SampleSet | None  # the source's test/validation split (None if none), eval transforms
    num_classes: int
    in_chans: int  # 1 for Fashion-MNIST, 3 otherwise
    info: dict  # what to record with a run: sizes, minival fingerprint, seed, class names...
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def normalizer(self) -> Normalize:
        """For loads with normalize=False: turns a uint8 batch into the model's input, on any
        device."""
        return Normalize(self.mean, self.std)


def _data_dir(cfg: DataConfig) -> str | None:
    """The data folder as recorded with a run: a URI without the credentials it may carry."""
    if cfg.source == "fashion-mnist" and not cfg.data_dir:
        return FASHION_MNIST_DIR
    return storage.redacted(str(cfg.data_dir)) if cfg.data_dir else None


def open_sources(cfg: DataConfig, resolution: int) -> tuple[ImageSource, ImageSource | None]:
    """The source's (train, test) splits.  Imports stay local: each source loads only its own
    dependencies (PIL, pyarrow, ...)."""
    if cfg.source == "synthetic":
        from rsearch.data.synthetic import open_synthetic

        return open_synthetic(cfg, cache_root(cfg), resolution)
    if cfg.source == "fashion-mnist":
        from rsearch.data.fashion_mnist import open_fashion_mnist

        return open_fashion_mnist(cfg)
    if cfg.source == "imagefolder":
        from rsearch.data.imagefolder import open_imagefolder

        return open_imagefolder(cfg)
    from rsearch.data.parquet import open_parquet

    return open_parquet(cfg)


def data_shape(cfg: DataConfig) -> dict:
    """{num_classes, in_chans} of the data, without decoding an image: synthetic data as its
    config declares it, Fashion-MNIST's 10 grey classes, the class folders of an imagefolder,
    the labels of a Parquet dataset."""
    if cfg.source == "synthetic":
        return {"num_classes": cfg.num_classes, "in_chans": 3}
    if cfg.source == "fashion-mnist":
        return {"num_classes": 10, "in_chans": 1}
    train, _ = open_sources(cfg, MIN_IMAGE_SIZE)  # lists files / reads labels only
    return {"num_classes": train.num_classes, "in_chans": train.in_chans}


def load_data(
    cfg: DataConfig,
    *,
    resolution: int,
    randaugment_ops: int = 2,
    randaugment_magnitude: int = 10,
    normalize: bool = True,
) -> Splits:
    """Open the source, hold out the minival split, attach the recipe's transforms.

    normalize=False keeps items uint8 (4x less to move between processes and to the GPU);
    the caller then applies `splits.normalizer()` to each batch on the device.
    """
    if not bounds.is_integer(resolution) or resolution < MIN_IMAGE_SIZE:
        raise FieldError("resolution", f"an integer >= {MIN_IMAGE_SIZE}", resolution)
    bounds.check("randaugment_ops", randaugment_ops)
    bounds.check("randaugment_magnitude", randaugment_magnitude)
    train_source, test_source = open_sources(cfg, resolution)
    train_idx, minival_idx = train_minival(
        train_source.labels, cfg.minival_fraction, cfg.seed, train_source.class_names
    )
    norm = Normalize(train_source.mean, train_source.std) if normalize else None
    augment = train_transform(
        resolution, randaugment_ops, randaugment_magnitude, cfg.crop_min_scale
    )
    evaluate = EvalTransform(resolution)
    if cfg.minival_in_train:  # a final model: every training image trains (minival still scored)
        train_idx = np.sort(np.concatenate([train_idx, minival_idx]))
    train = SampleSet(train_source, train_idx, augment, random=True, normalize=norm, seed=cfg.seed)
    if cfg.decode == "device":  # items: the encoded files; batches decoded on the device, uint8
        from rsearch.data.device_jpeg import EncodedSampleSet

        train = EncodedSampleSet(train)
    minival = SampleSet(
        train_source, minival_idx, evaluate, random=False, normalize=norm, seed=cfg.seed
    )
    test = None
    if test_source is not None:
        test = SampleSet(
            test_source,
            range(len(test_source)),
            evaluate,
            random=False,
            normalize=norm,
            seed=cfg.seed,
        )
    info = {
        "source": cfg.source,
        "data_dir": _data_dir(cfg),
        "resolution": resolution,
        "seed": cfg.seed,
        "num_classes": train_source.num_classes,
        "in_chans": train_source.in_chans,
        "train_size": len(train),
        "minival_size": len(minival),
        "test_size": len(test) if test else 0,
        "minival_fraction": cfg.minival_fraction,
        "minival_in_train": cfg.minival_in_train,
        "decode": cfg.decode,
        "minival_fingerprint": fingerprint(minival_idx),
        "class_names": list(train_source.class_names) if train_source.class_names else None,
    }
    return Splits(
        train,
        minival,
        test,
        train_source.num_classes,
        train_source.in_chans,
        info,
        tuple(train_source.mean),
        tuple(train_source.std),
    )
