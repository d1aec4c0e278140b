"""ImageFolder trees: layout, colour modes, and bad input (one class, empty, broken images)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import encode_jpeg, encode_png

from rsearch.data import DataConfig, load_data, make_loader
from rsearch.errors import UserError

# The tests write their images with torchvision's (deprecated, still working) encoders.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _pixels(channels, size=20, seed=0):
    return torch.randint(
        0,
        256,
        (channels, size, size + 4),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(seed),
    )


def write_image(path: Path, kind: str, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "jpg":
        path.write_bytes(encode_jpeg(_pixels(3, seed=seed), quality=90).numpy().tobytes())
    elif kind == "png":
        path.write_bytes(encode_png(_pixels(3, seed=seed)).numpy().tobytes())
    elif kind == "grey":
        path.write_bytes(encode_png(_pixels(1, seed=seed)).numpy().tobytes())
    elif kind == "rgba":
        Image.fromarray(_pixels(4, seed=seed).permute(1, 2, 0).numpy(), "RGBA").save(path)


def make_tree(root: Path, classes=("cat", "dog", "eel"), per_class=4, val=True) -> None:
    kinds = ["jpg", "png", "grey", "rgba"]
    for c, name in enumerate(classes):
        for i in range(per_class):
            kind = kinds[i % 4]
            suffix = "png" if kind in ("png", "grey", "rgba") else "jpg"
            write_image(root / "train" / name / f"{i}.{suffix}", kind, seed=10 * c + i)
            if val and i < 2:
                write_image(root / "val" / name / f"v{i}.{suffix}", kind, seed=100 + 10 * c + i)
    (root / "train" / classes[0] / "notes.txt").write_text(
        "not an image"
    )  # ignored: not an image extension


def _load(root, **cfg):
    return load_data(DataConfig(source="imagefolder", data_dir=str(root), **cfg), resolution=16)


def test_layout_classes_and_colour_modes(tmp_path):
    make_tree(tmp_path)
    splits = _load(tmp_path)
    assert splits.num_classes == 3 and splits.in_chans == 3
    assert splits.info["class_names"] == ["cat", "dog", "eel"]
    assert (splits.info["train_size"], splits.info["minival_size"], splits.info["test_size"]) == (
        9,
        3,
        6,
    )
    source = splits.train.source
    for i in range(len(source)):
        image = source.read(i)
        assert image.dtype == torch.uint8 and image.shape == (3, 20, 24)  # grey and RGBA become RGB
    grey = source.read(int(np.flatnonzero([p.endswith("2.png") for p in source.paths])[0]))
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    batch, labels = next(iter(make_loader(splits.train, 4, train=True, seed=0, epoch=0)))
    assert batch.shape == (4, 3, 16, 16) and set(labels.tolist()) <= {0, 1, 2}


def test_val_folder_is_the_test_split_and_may_lack_classes(tmp_path):
    make_tree(tmp_path)
    for f in (tmp_path / "val" / "eel").iterdir():
        f.unlink()
    (tmp_path / "val" / "eel").rmdir()
    splits = _load(tmp_path)
    assert splits.test is not None and sorted(set(splits.test.labels.tolist())) == [0, 1]


def test_without_val_there_is_no_test_split(tmp_path):
    make_tree(tmp_path, val=False)
    assert _load(tmp_path).test is None


def test_one_class_is_refused(tmp_path):
    make_tree(tmp_path, classes=("only",))
    with pytest.raises(
        UserError,
        match=r"--data-dir: .*train has 1 class folder\(s\) \(only\); a classifier needs "
        r"at least 2",
    ):
        _load(tmp_path)


def test_missing_empty_or_wrongly_laid_out_folders_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"--data-dir: .*absent does not exist"):
        _load(tmp_path / "absent")
    with pytest.raises(UserError, match=r"--data-dir: .* is empty"):
        _load(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(UserError, match=r"has no train/ folder"):
        _load(tmp_path)
    with pytest.raises(UserError, match=r"the imagefolder source needs a data directory"):
        load_data(DataConfig(source="imagefolder"), resolution=16)


def test_a_class_folder_without_images_is_refused(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "train" / "fox").mkdir()
    with pytest.raises(UserError, match=r"class folder\(s\) fox in .* hold no images"):
        _load(tmp_path)


def test_val_classes_unknown_to_train_are_refused(tmp_path):
    make_tree(tmp_path)
    write_image(tmp_path / "val" / "yak" / "0.jpg", "jpg")
    with pytest.raises(UserError, match=r"val has class folder\(s\) not in train/: yak"):
        _load(tmp_path)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("verify", ["auto", "header"])
def test_truncated_images_are_caught_at_load_time_naming_the_file(tmp_path, verify):
    make_tree(tmp_path)
    _truncate(tmp_path / "train" / "dog" / "0.jpg")
    with pytest.raises(UserError, match=r"image .*dog/0.jpg: .*truncated"):
        _load(tmp_path, verify_images=verify)


def test_a_file_that_is_no_image_is_caught_at_load_time(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "train" / "eel" / "fake.jpg").write_bytes(b"this is plain text, not a JPEG")
    with pytest.raises(UserError, match=r"image .*eel/fake.jpg: not a JPEG, PNG, GIF or WebP file"):
        _load(tmp_path, verify_images="header")
    with pytest.raises(UserError, match=r"image .*eel/fake.jpg: cannot decode it"):
        _load(tmp_path)  # small set: every image decoded


@pytest.mark.parametrize("workers", [0, 1])
def test_unchecked_broken_images_fail_on_first_read_with_one_line(tmp_path, workers):
    make_tree(tmp_path)
    _truncate(tmp_path / "train" / "cat" / "1.png", keep=0.4)
    splits = _load(tmp_path, verify_images="none")
    loader = make_loader(splits.train, 3, train=True, seed=0, epoch=0, num_workers=workers)
    with pytest.raises(UserError) as caught:
        for _ in loader:
            pass
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("image ") and "cat/1.png: cannot decode it" in message


def test_empty_image_file_is_named(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "train" / "cat" / "empty.jpg").write_bytes(b"")
    with pytest.raises(UserError, match=r"image .*cat/empty.jpg: empty file"):
        _load(tmp_path, verify_images="header")
