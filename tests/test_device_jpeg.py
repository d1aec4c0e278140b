"""The device JPEG pipeline (data/device_jpeg.py): on a CPU device it must give the CPU
pipeline's training images bit for bit, with RandAugment applied by groups of samples."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from test_data_imagefolder import write_image

from rsearch.cli import main
from rsearch.data import DataConfig, load_data, make_loader
from rsearch.data.device_jpeg import (
    DECODED,
    FIRST_OP,
    FLIP,
    DeviceAugment,
    EncodedSampleSet,
    collate,
)
from rsearch.errors import UserError
from rsearch.space import parse_space

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _jpeg_tree(root: Path, per_class: int = 24) -> None:
    """JPEGs of several sizes (crops then differ in scale), RGB and grey."""
    from torchvision.io import encode_jpeg

    for c in range(3):
        for i in range(per_class):
            seed = 100 * c + i
            gen = torch.Generator().manual_seed(seed)
            channels = 1 if i % 5 == 0 else 3
            height, width = 24 + (i % 4) * 8, 28 + (i % 3) * 10
            pixels = torch.randint(
                0, 256, (channels, height, width), dtype=torch.uint8, generator=gen
            )
            path = root / "train" / f"class{c}" / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_jpeg(pixels, quality=90).numpy().tobytes())


def _smooth_jpeg_tree(root: Path, per_class: int = 16) -> None:
    """JPEGs like photographs (smooth), of several sizes."""
    from torchvision.io import encode_jpeg
    from torchvision.transforms.v2 import functional as F

    for c in range(3):
        for i in range(per_class):
            gen = torch.Generator().manual_seed(100 * c + i)
            coarse = torch.randint(0, 256, (3, 5, 5), dtype=torch.uint8, generator=gen)
            pixels = F.resize(coarse, [30 + (i % 4) * 9, 26 + (i % 3) * 13], antialias=True)
            path = root / "train" / f"class{c}" / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_jpeg(pixels, quality=95).numpy().tobytes())


def _splits(
    root: Path, magnitude: int = 15, verify: str = "auto", every_file: bool = False, ops: int = 2
):
    cfg = DataConfig(
        source="imagefolder",
        data_dir=str(root),
        minival_fraction=0.1,
        verify_images=verify,
        minival_in_train=every_file,  # every file in the training split
    )
    return load_data(
        cfg, resolution=16, randaugment_ops=ops, randaugment_magnitude=magnitude, normalize=False
    )


def test_batched_resize_gives_the_cpu_pipelines_images_within_rounding(tmp_path):
    """The resize CUDA uses (matrix products over the batch, rounded once) in place of the
    call per image: each crop (and flip) as the CPU pipeline makes it, up to the rounding of
    the resize's passes (no RandAugment here: Equalize amplifies a grey level's difference)."""
    _smooth_jpeg_tree(tmp_path)
    train = _splits(tmp_path, every_file=True, ops=0).train
    cpu_view = train.at_epoch(seed=3, epoch=1)
    encoded = EncodedSampleSet(train).at_epoch(seed=3, epoch=1)
    n = len(encoded)
    (files, params), _ = collate([encoded[i] for i in range(n)])
    augment = DeviceAugment(encoded, torch.device("cpu"), batched=True)
    assert augment.batched and not DeviceAugment(encoded, torch.device("cpu")).batched
    images = augment(files, params)
    for i in range(n):
        difference = (images[i].int() - cpu_view[i][0].int()).abs().float()
        assert difference.max() <= 1 and difference.mean() < 0.35, f"sample {i}"


@pytest.mark.parametrize("epoch", [0, 3])
def test_device_pipeline_gives_the_cpu_pipelines_images(tmp_path, epoch):
    _jpeg_tree(tmp_path)
    train = _splits(tmp_path).train
    cpu_view = train.at_epoch(seed=7, epoch=epoch)
    encoded = EncodedSampleSet(train).at_epoch(seed=7, epoch=epoch)
    n = len(encoded)
    (files, params), labels = collate([encoded[i] for i in range(n)])
    images = DeviceAugment(encoded, torch.device("cpu"))(files, params)
    assert images.shape == (n, 3, 16, 16) and images.dtype == torch.uint8
    for i in range(n):
        expected, label = cpu_view[i]
        assert torch.equal(images[i], expected), f"sample {i}"
        assert labels[i] == label
    # the batch really was grouped: many samples share an op, both flip outcomes occur
    first_ops = params[:, FIRST_OP].tolist()
    assert len(set(first_ops)) >= 8 and max(map(first_ops.count, set(first_ops))) >= 2
    assert 0 < params[:, FLIP].sum() < n


def test_loader_batches_the_encoded_files(tmp_path):
    _jpeg_tree(tmp_path, per_class=8)
    train = _splits(tmp_path, magnitude=10).train
    encoded = EncodedSampleSet(train)
    loader = make_loader(encoded, 8, train=True, seed=0, epoch=1, num_workers=1, collate=collate)
    augment = DeviceAugment(encoded, torch.device("cpu"))
    plain = make_loader(train, 8, train=True, seed=0, epoch=1)
    for ((files, params), labels), (x, y) in zip(loader, plain):
        assert len(files) == 8 and params.shape == (8, FIRST_OP + 4)
        assert torch.equal(augment(files, params), x) and torch.equal(labels, y)


def test_files_nvjpeg_does_not_take_are_decoded_by_the_worker(tmp_path):
    """PNG, a PNG named .jpg, CMYK and MPO JPEGs: the same images as the CPU pipeline's."""
    from PIL import Image

    _jpeg_tree(tmp_path, per_class=6)
    folder = tmp_path / "train" / "class0"
    write_image(folder / "plain.png", "png")
    write_image(folder / "named.jpg", "png")
    pixels = torch.randint(0, 256, (20, 24, 3), dtype=torch.uint8).numpy()
    Image.fromarray(pixels, "RGB").convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    phone = Image.fromarray(pixels, "RGB")  # two frames: what Pillow reads as MPO
    phone.save(folder / "phone.jpg", "MPO", save_all=True, append_images=[phone.copy()])
    assert Image.open(folder / "phone.jpg").format == "MPO"
    train = _splits(tmp_path, every_file=True).train
    encoded = EncodedSampleSet(train).at_epoch(seed=1, epoch=0)
    names = [Path(encoded.source.paths[i]).name for i in encoded.indices]
    (files, params), _ = collate([encoded[i] for i in range(len(encoded))])
    decoded_by_worker = {n for n, d in zip(names, params[:, DECODED].tolist()) if d}
    # the rest, an MPO (a JPEG to nvJPEG) and grey JPEGs included, go to the device as files
    assert decoded_by_worker == {"plain.png", "named.jpg", "cmyk.jpg"} and "phone.jpg" in names
    images = DeviceAugment(encoded, torch.device("cpu"))(files, params)
    cpu_view = train.at_epoch(seed=1, epoch=0)
    for i in range(len(encoded)):
        assert torch.equal(images[i], cpu_view[i][0]), names[i]
    synthetic = load_data(DataConfig(train_size=40, test_size=0), resolution=16).train
    with pytest.raises(UserError, match="reads an ImageFolder of JPEG files"):
        EncodedSampleSet(synthetic)


def test_a_corrupt_jpeg_is_named(tmp_path):
    _jpeg_tree(tmp_path, per_class=4)
    bad = tmp_path / "train" / "class1" / "2.jpg"
    data = bad.read_bytes()
    scan = data.index(b"\xff\xda") + 12  # headers kept, the entropy-coded data zeroed
    bad.write_bytes(data[:scan] + b"\x00" * (len(data) - scan))
    encoded = EncodedSampleSet(_splits(tmp_path, verify="none").train)  # found at decoding
    items = [encoded[i] for i in range(len(encoded))]
    (files, params), _ = collate(items)
    with pytest.raises(UserError, match=r"class1/2\.jpg: cannot decode it"):
        DeviceAugment(encoded, torch.device("cpu"))(files, params)


def test_training_with_device_decoding_gives_the_cpu_pipelines_run(tmp_path):
    """data.decode device end to end (rsearch train): the same losses and accuracies, exactly."""
    _jpeg_tree(tmp_path / "jpeg", per_class=16)
    runs = {}
    for decode in ("cpu", "device"):
        out = tmp_path / decode
        argv = [
            *"train --depth 26 --width 0.25 --resolution 32 --epochs 2 --batch-size 16".split(),
            *("--data", "imagefolder", "--data-dir", str(tmp_path / "jpeg"), "--decode", decode),
            *("--loader-workers", "1", "--output", str(out)),
        ]
        assert main(argv) == 0
        runs[decode] = pq.read_table(out / "epochs.parquet").to_pylist()
        assert json.loads((out / "summary.json").read_text())["config"]["data"]["decode"] == decode
    for cpu, device in zip(runs["cpu"], runs["device"]):
        for key in ("train_loss", "minival_loss", "minival_top1"):
            assert device[key] == cpu[key], key


SCALING = {"depth": 26, "width": 0.25, "resolution": 32}


def test_device_decoding_is_for_imagefolders(tmp_path, capsys):
    with pytest.raises(UserError, match="data.decode: only for source imagefolder, got source"):
        parse_space({"epochs": 1, "scaling": SCALING, "data": {"decode": "device"}})
    code = main("train --depth 26 --width 0.25 --decode device".split())
    assert code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "--decode: expected cpu for source synthetic (device decodes an imagefolder's JPEGs), "
            "got 'device'"
        )
    )
