"""Training data: four sources behind one interface, the recipe's transforms, the minival split.

    splits = load_data(DataConfig(source="synthetic"), resolution=32)
    loader = make_loader(splits.train, 64, train=True, seed=0, epoch=0, num_workers=4)
    for epoch in range(epochs):
        loader.set_epoch(epoch)  # same batches as make_loader(..., epoch=epoch); workers stay
        for images, labels in loader: ...

Modules: config (DataConfig), source (the ImageSource interface), synthetic /
fashion_mnist / imagefolder / parquet (the sources), images (decoding, file checks),
transforms, split (minival), dataset (SampleSet), loader (deterministic sharded
loaders), load (load_data, Splits).  Nothing here imports Ray.
"""

from rsearch.data.config import SOURCES, DataConfig
from rsearch.data.dataset import SampleSet
from rsearch.data.load import Splits, load_data
from rsearch.data.loader import Loader, epoch_order, make_loader
from rsearch.data.transforms import Normalize

__all__ = [
    "SOURCES",
    "DataConfig",
    "Loader",
    "Normalize",
    "SampleSet",
    "Splits",
    "epoch_order",
    "load_data",
    "make_loader",
]
