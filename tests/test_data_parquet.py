"""Parquet shards: layouts, binary and Hugging-Face-style struct columns, row-group reads, bad
files."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from rsearch.data import DataConfig, load_data, make_loader
from rsearch.data.parquet import CACHED_GROUPS
from rsearch.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _encoded(i: int) -> tuple[bytes, torch.Tensor]:
    """Image i: a small picture whose first pixel encodes i (PNG, lossless) or a JPEG."""
    pixels = torch.randint(
        0, 256, (3, 12, 14), dtype=torch.uint8, generator=torch.Generator().manual_seed(i)
    )
    pixels[:, 0, 0] = i % 256
    if i % 3 == 2:
        return encode_jpeg(pixels, quality=95).numpy().tobytes(), pixels
    return encode_png(pixels).numpy().tobytes(), pixels


def write_shard(
    path: Path, rows: range, classes=3, struct=False, row_group_size=5, image="image", label="label"
):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = [_encoded(i)[0] for i in rows]
    images = (
        pa.array([{"bytes": b, "path": f"{i}.png"} for i, b in zip(rows, data)])
        if struct
        else pa.array(data, type=pa.binary())
    )
    table = pa.table(
        {
            image: images,
            label: pa.array([i % classes for i in rows], type=pa.int64()),
            "note": pa.array([f"row {i}" for i in rows]),
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)


def _load(path, **cfg):
    return load_data(DataConfig(source="parquet", data_dir=str(path), **cfg), resolution=16)


def test_a_single_file_is_the_training_split_read_exactly(tmp_path):
    write_shard(tmp_path / "data.parquet", range(30))
    splits = _load(tmp_path / "data.parquet")
    source = splits.train.source
    assert splits.test is None and splits.num_classes == 3 and len(source) == 30
    assert len(source.groups) == 6  # 30 rows in row groups of 5
    for i in (0, 7, 29):
        if i % 3 != 2:  # PNG rows are lossless
            assert torch.equal(source.read(i), _encoded(i)[1])
        assert source.labels[i] == i % 3
    assert (splits.info["train_size"], splits.info["minival_size"]) == (27, 3)


def test_a_folder_of_shards_with_train_and_test_names(tmp_path):
    write_shard(tmp_path / "data" / "train-00000-of-00002.parquet", range(0, 20))
    write_shard(tmp_path / "data" / "train-00001-of-00002.parquet", range(20, 40))
    write_shard(tmp_path / "data" / "test-00000-of-00001.parquet", range(100, 112))
    splits = _load(tmp_path)
    assert len(splits.train.source) == 40 and len(splits.test) == 12
    assert splits.train.source.read(25)[:, 0, 0].tolist() == [25, 25, 25]
    x, y = splits.test[4]
    assert x.shape == (3, 16, 16) and y == 104 % 3


def test_train_and_val_folders_and_struct_image_columns(tmp_path):
    write_shard(tmp_path / "train" / "a.parquet", range(24), struct=True)
    write_shard(tmp_path / "val" / "b.parquet", range(50, 56), struct=True)
    splits = _load(tmp_path)
    assert len(splits.test) == 6
    assert splits.train.source.read(4)[:, 0, 0].tolist() == [4, 4, 4]


def test_columns_can_be_renamed(tmp_path):
    write_shard(tmp_path / "d.parquet", range(12), image="jpg", label="cls")
    splits = _load(tmp_path, image_column="jpg", label_column="cls")
    assert splits.num_classes == 3


def test_missing_columns_are_refused_with_the_columns_there(tmp_path):
    write_shard(tmp_path / "d.parquet", range(12), image="picture")
    with pytest.raises(
        UserError,
        match=r"data.image_column: .*d.parquet has no column 'image' "
        r"\(columns: picture, label, note\)",
    ):
        _load(tmp_path)
    with pytest.raises(UserError, match=r"data.label_column: .*has no column 'target'"):
        _load(tmp_path, image_column="picture", label_column="target")


def test_columns_of_the_wrong_type_are_refused(tmp_path):
    write_shard(tmp_path / "d.parquet", range(12))
    with pytest.raises(
        UserError, match=r"data.image_column: column 'note' .* is string; expected encoded image"
    ):
        _load(tmp_path, image_column="note")
    with pytest.raises(
        UserError, match=r"data.label_column: column 'note' .* is string; expected integer"
    ):
        _load(tmp_path, label_column="note")


def test_bytes_that_are_not_images_are_refused_at_load_time(tmp_path):
    table = pa.table(
        {"image": pa.array([b"not an image"] * 6, type=pa.binary()), "label": [0, 1] * 3}
    )
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(UserError, match=r"image .*d.parquet row group 0 row 0: cannot decode it"):
        _load(tmp_path)


def test_a_file_that_is_not_parquet_and_an_empty_folder_are_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text("hello")
    with pytest.raises(UserError, match=r"holds no .parquet files"):
        _load(tmp_path)
    (tmp_path / "sub" / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match=r"bad.parquet is not a readable Parquet file"):
        _load(tmp_path)


def test_training_reads_stay_within_a_few_row_groups_and_work_in_workers(tmp_path):
    write_shard(tmp_path / "d.parquet", range(120), row_group_size=10)
    splits = _load(tmp_path)
    loader = make_loader(splits.train, 8, train=True, seed=0, epoch=0)
    groups = splits.train.source.group_of_row
    plan = [splits.train.indices[b] for b in loader.batch_sampler.batches]
    # consecutive batches touch no more groups than the reader caches
    for i in range(len(plan) - 1):
        assert len(set(groups[np.concatenate(plan[i : i + 2])])) <= CACHED_GROUPS
    inline = [x for x, _ in loader]
    forked = [
        x for x, _ in make_loader(splits.train, 8, train=True, seed=0, epoch=0, num_workers=2)
    ]
    assert all(torch.equal(a, b) for a, b in zip(inline, forked)) and len(inline) == len(forked)
