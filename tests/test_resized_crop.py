"""The batched resized crop (data/resized_crop.py) against torchvision's call per image."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from rsearch.data import resized_crop
from rsearch.data.resized_crop import resized_crops

SIZE = 24


def _images(n: int = 40, seed: int = 0):
    """Noise and smooth images of many shapes (a run of one shape among them), random
    resized crop boxes as training draws them, and the crops that are special cases."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    crop = v2.RandomResizedCrop(SIZE, scale=(0.08, 1.0))
    images, boxes = [], []
    for i in range(n):
        height, width = (48, 64) if i % 4 == 0 else torch.randint(12, 120, (2,), generator=gen)
        image = torch.randint(
            0, 256, (3, int(height), int(width)), dtype=torch.uint8, generator=gen
        )
        if i % 3 == 0:  # smooth, like a photograph
            image = F.resize(image[:, :6, :6], [int(height), int(width)], antialias=True)
        box = crop.make_params([image])
        images.append(image)
        boxes.append([box["top"], box["left"], box["height"], box["width"]])
    special = [
        ((3, SIZE, SIZE), [0, 0, SIZE, SIZE]),  # nothing to resize: the crop itself
        ((3, 40, 50), [5, 7, SIZE, SIZE]),  # an unscaled crop inside a larger image
        ((3, 10, 12), [0, 0, 10, 12]),  # enlarged
        ((3, 200, 30), [3, 2, 190, 27]),  # shrunk a lot one way only
        ((1, 30, 30), [1, 1, 20, 25]),  # one channel
    ]
    for shape, box in special:
        images.append(torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen))
        boxes.append(box)
    return images, boxes


def _torchvision(image: torch.Tensor, box: list[int]) -> torch.Tensor:
    """What torchvision makes of a uint8 image on CUDA: the resize in float32, rounded once."""
    resized = F.resized_crop(
        image.float(), *box, [SIZE, SIZE], interpolation=InterpolationMode.BICUBIC, antialias=True
    )
    return resized.clamp(0, 255).round().to(torch.uint8)


def _compare(images, boxes, out):
    for i, (image, box) in enumerate(zip(images, boxes)):
        expected = _torchvision(image, box)
        difference = (out[i, : image.shape[0]].int() - expected.int()).abs()
        assert difference.max() <= 1, f"image {i} {tuple(image.shape)} box {box}"
        assert (difference > 0).float().mean() < 0.01, f"image {i}: float rounding only"


def test_every_crop_is_torchvisions_within_float_rounding():
    images, boxes = _images()
    rgb = [i for i, image in enumerate(images) if image.shape[0] == 3]
    out = resized_crops([images[i] for i in rgb], [boxes[i] for i in rgb], SIZE)
    assert out.shape == (len(rgb), 3, SIZE, SIZE) and out.dtype == torch.uint8
    _compare([images[i] for i in rgb], [boxes[i] for i in rgb], out)
    grey = [i for i, image in enumerate(images) if image.shape[0] == 1]
    _compare(
        [images[i] for i in grey],
        [boxes[i] for i in grey],
        resized_crops([images[i] for i in grey], [boxes[i] for i in grey], SIZE),
    )


def test_an_unscaled_crop_is_copied_exactly():
    images, boxes = _images(0)
    out = resized_crops(images[:2], boxes[:2], SIZE)
    assert torch.equal(out[0], images[0])
    assert torch.equal(out[1], images[1][:, 5 : 5 + SIZE, 7 : 7 + SIZE])


@pytest.mark.parametrize("chunk_elements", [1, 2 * (3 * 48 * 64 + 6 * SIZE * (48 + 64))])
def test_chunks_of_any_size_give_the_same_images(monkeypatch, chunk_elements):
    """A padded chunk's zeros are never read: one image per chunk, or a few per chunk,
    gives what one chunk for the whole batch gives (within float rounding)."""
    images, boxes = _images(24, seed=1)
    whole = resized_crops(images[:24], boxes[:24], SIZE)
    monkeypatch.setattr(resized_crop, "CHUNK_ELEMENTS", chunk_elements)
    assert len(resized_crop._chunks(images[:24], SIZE)) > 1
    chunked = resized_crops(images[:24], boxes[:24], SIZE)
    assert (whole.int() - chunked.int()).abs().max() <= 1
    _compare(images[:24], boxes[:24], chunked)


def test_chunks_hold_similar_shapes_within_the_budget(monkeypatch):
    """The budget counts the padded images and the tap matrices: banner-shaped images
    (few pixels, a long side) are chunked by their taps."""
    budget = 4 * (3 * 100 * 100 + 6 * SIZE * 200)
    monkeypatch.setattr(resized_crop, "CHUNK_ELEMENTS", budget)
    shapes = [(100, 100)] * 5 + [(10, 10)] * 3 + [(300, 300)] + [(2, 2000)] * 3
    chunks = resized_crop._chunks([torch.empty(3, h, w) for h, w in shapes], SIZE)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(shapes)))
    for chunk in chunks:
        height = max(shapes[i][0] for i in chunk)
        width = max(shapes[i][1] for i in chunk)
        each = 3 * height * width + 6 * SIZE * (height + width)
        assert len(chunk) == 1 or len(chunk) * each <= budget
    assert [8] in chunks  # larger than the budget: alone
    assert max(len(chunk) for chunk in chunks if 9 in chunk) < 3  # banners: by their taps


@pytest.mark.parametrize(
    "shape, box, message",
    [
        ((3, 20, 20), [5, 5, 16, 16], "outside a (20, 20) image"),
        ((3, 20, 20), [0, 0, 0, 8], "an empty box"),
        ((3, 20, 20), [-1, 0, 8, 8], "an empty box"),
        ((1, 20, 20), [0, 0, 8, 8], "images of 3 and 1 channels"),
    ],
)
def test_what_random_resized_crop_never_gives_is_refused(shape, box, message):
    """torchvision pads a box past the border with zeros; the matrices would renormalise
    over the pixels that exist: refused, as are an empty box and mixed channel counts."""
    images = [torch.zeros(3, 20, 20, dtype=torch.uint8), torch.zeros(shape, dtype=torch.uint8)]
    with pytest.raises(ValueError, match=re.escape(message)):
        resized_crops(images, [[0, 0, 8, 8], box], SIZE)


def test_the_resize_is_float32_inside_autocast():
    images, boxes = _images(12, seed=2)
    plain = resized_crops(images[:12], boxes[:12], SIZE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(resized_crops(images[:12], boxes[:12], SIZE), plain)


def test_the_benchmark_prints_both_methods_side_by_side(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "resized_crop.py"
    report = tmp_path / "resize.json"
    args = ["--batch", "4", "--size", "16", "--source", "40", "--rounds", "2", "--repeats", "1"]
    run = subprocess.run(
        [sys.executable, str(script), *args, "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "per_image" in run.stdout and "ratio batched/per_image" in run.stdout
    record = json.loads(report.read_text())
    assert set(record["img_s"]) == {"per_image", "batched"} and len(record["rounds"]["ratio"]) == 2
    assert 0 <= record["agreement"]["max_abs_difference"] <= 255
