"""The embedded dataset: procedurally rendered scenes, deterministic by seed, any resolution.

Each image is a cluttered scene: a background gradient, up to 3 thin lines, 1-3 small
"distractor" shapes, and 1-2 "key" shapes that are always larger than every
distractor.  The class is a property of the key shapes only:

    shape   = class % 5              circle, square, triangle, cross, ring
    texture = (class // 5) % 4       solid, stripes, checker, dots
    count   = class // 20 + 1        one or two key shapes

so 10 classes (the default) are 5 shapes x {solid, stripes}.  Colours, positions, sizes,
tilts, the distractors' shapes and textures, the clutter and the pixel noise are random.
Solving it means finding the largest object (a global comparison: depth and receptive
field matter), reading its outline, and its texture, whose period is 0.35-0.5 of the
object's radius: a few pixels at 32 px, less inside a zoomed-out random crop, where it
blurs to a flat mix — so resolution matters too.

Calibration (the knobs below): ResNet-RS depth 26, width 0.25, 32 px, batch 64, SGD 0.05
one-cycle, 4,900 training images, test top-1 (chance: 10%): with the full recipe's
augmentation (crop from 8%, flip, RandAugment 2/10) 13% after one epoch, 35% after five;
without RandAugment (measured at tilt 0.3, a little harder) 17% after one, 47% after five.
The same net and recipe at 64 px: 22% after one epoch, 47% after five.

Scenes are defined in continuous coordinates ([-1, 1] across the image) and drawn with
anti-aliased signed distances, so one seed gives the same scenes at every resolution.
Images are rendered at `render_size(resolution)` = ceil(resolution / 0.875): the eval
center-crop of 87.5% then lands on native pixels.  A rendered split is cached on disk
(keyed by every parameter and RENDER_VERSION) so a search's trials render it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from rsearch.data.source import ImageSource
from rsearch.errors import UserError
from rsearch.memory import available_bytes, human_size

RENDER_VERSION = 2  # bump when the renderer's output changes: old caches are then ignored
SHAPES = ("circle", "square", "triangle", "cross", "ring")
TEXTURES = ("solid", "stripes", "checker", "dots")
MAX_KEYS = 2
MAX_CLASSES = len(SHAPES) * len(TEXTURES) * MAX_KEYS
LINE = len(SHAPES)  # shape id used for the clutter lines
N_LINES, MAX_DISTRACTORS = 3, 3
# Difficulty knobs (calibrated so a tiny ResNet learns well above chance in a few epochs at 32 px
# but is far from perfect after one).
KEY_SIZE = (0.5, 0.7)  # key shape radius, as a fraction of the image's half-width
DISTRACTOR_RATIO = (0.2, 0.45)  # distractor radius / key radius
DISTRACTORS = (1, 3)  # min, max number of distractors
LINE_PROBABILITY = 0.4  # each of the N_LINES clutter lines is drawn with this probability
TEXTURE_PERIOD = (0.35, 0.5)  # texture period / shape radius
ROTATION = (
    0.15  # radians; shapes are tilted by up to this either way (full turns slow learning ~2x)
)
SLOTS = N_LINES + MAX_DISTRACTORS + MAX_KEYS  # objects per scene, in drawing order
PIXELS_PER_CHUNK = 1 << 23  # objects x pixels rendered at once (bounds memory to ~200 MB)
RENDER_WORKING_BYTES = 256 << 20  # what rendering a chunk needs beside the split's own array
SPLIT_STREAMS = {"train": 0, "test": 1}  # independent seed streams per split


def render_size(resolution: int) -> int:
    return math.ceil(resolution / 0.875)


def class_attributes(label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shape id, texture id, key count) of each class label."""
    return (
        label % len(SHAPES),
        (label // len(SHAPES)) % len(TEXTURES),
        label // (len(SHAPES) * len(TEXTURES)) + 1,
    )


def sample_scenes(n: int, num_classes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random scene parameters for n images (resolution-independent)."""
    labels = rng.permutation(np.arange(n) % num_classes)  # balanced classes
    key_shape, key_texture, key_count = class_attributes(labels)
    shape = np.empty((n, SLOTS), np.int64)
    texture = np.zeros((n, SLOTS), np.int64)
    size = np.empty((n, SLOTS))
    active = np.zeros((n, SLOTS), bool)
    lines, dist, keys = (
        slice(0, N_LINES),
        slice(N_LINES, N_LINES + MAX_DISTRACTORS),
        slice(N_LINES + MAX_DISTRACTORS, SLOTS),
    )

    shape[:, lines] = LINE
    size[:, lines] = rng.uniform(0.3, 0.9, (n, N_LINES))  # half-length
    active[:, lines] = rng.random((n, N_LINES)) < LINE_PROBABILITY

    key_size = rng.uniform(*KEY_SIZE, n)
    shape[:, keys] = key_shape[:, None]
    texture[:, keys] = key_texture[:, None]
    size[:, keys] = key_size[:, None] * rng.uniform(0.95, 1.0, (n, MAX_KEYS))
    active[:, keys] = np.arange(MAX_KEYS)[None] < key_count[:, None]

    # Distractors: any shape and texture, always clearly smaller than the key.
    shape[:, dist] = rng.integers(0, len(SHAPES), (n, MAX_DISTRACTORS))
    texture[:, dist] = rng.integers(0, len(TEXTURES), (n, MAX_DISTRACTORS))
    size[:, dist] = key_size[:, None] * rng.uniform(*DISTRACTOR_RATIO, (n, MAX_DISTRACTORS))
    active[:, dist] = (
        np.arange(MAX_DISTRACTORS)[None]
        < rng.integers(DISTRACTORS[0], DISTRACTORS[1] + 1, n)[:, None]
    )

    # Keep each shape inside the frame; lines may run off it.
    margin = np.where(shape == LINE, 0.0, size)
    centre = rng.uniform(-1, 1, (n, SLOTS, 2)) * (1 - margin)[..., None]
    background, colour, colour2 = _colours(n, rng)
    return {
        "labels": labels,
        "shape": shape,
        "texture": texture,
        "active": active,
        "centre": centre,
        "size": size,
        "angle": rng.uniform(-1, 1, (n, SLOTS)) * np.where(shape == LINE, math.pi, ROTATION),
        "period": size * rng.uniform(*TEXTURE_PERIOD, (n, SLOTS)),
        "thickness": rng.uniform(0.015, 0.04, (n, SLOTS)),
        "colour": colour,
        "colour2": colour2,
        "background": background,
        "bg_angle": rng.uniform(0, 2 * math.pi, n),
        "noise": rng.uniform(0.02, 0.06, n),
        "noise_seed": rng.integers(0, 2**62, n),
    }


def _colours(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background gradient ends (n, 2, 3), each object's colour and texture colour (n, SLOTS, 3)."""
    background = rng.uniform(0, 1, (n, 2, 3))
    colour = rng.uniform(0, 1, (n, SLOTS, 3))
    # Keep objects visible: flip a colour that is too close to the background's mean.
    too_close = np.abs(colour - background.mean(1, keepdims=True)).mean(-1, keepdims=True) < 0.2
    colour = np.where(too_close, 1 - colour, colour)
    # The texture's second colour: a darker (or, for dark colours, shifted) version of the first.
    colour2 = np.clip(
        colour * rng.uniform(0.15, 0.5, (n, SLOTS, 1))
        + rng.uniform(0, 0.4, (n, SLOTS, 1)) * (colour < 0.5),
        0,
        1,
    )
    return background, colour, colour2


def _box(u, v, a, b):
    """Signed distance (inside approximation) of an axis-aligned box of half-sizes a, b."""
    return torch.maximum(u.abs() - a, v.abs() - b)


def _shape_distance(shape: int, u, v, r, thickness):
    """Signed distance to shape `shape` of radius r, in the shape's own coordinates."""
    if shape == 0:  # circle
        return torch.sqrt(u * u + v * v) - r
    if shape == 1:  # square
        return _box(u, v, 0.8 * r, 0.8 * r)
    if shape == 2:  # equilateral triangle, circumradius r
        half = math.sqrt(3) / 2
        return torch.maximum(torch.maximum(v, -half * u - 0.5 * v), half * u - 0.5 * v) - 0.5 * r
    if shape == 3:  # cross
        return torch.minimum(_box(u, v, r, 0.3 * r), _box(u, v, 0.3 * r, r))
    if shape == 4:  # ring
        return (torch.sqrt(u * u + v * v) - 0.72 * r).abs() - 0.28 * r
    # LINE: a segment of half-length r
    return torch.sqrt((u.abs() - r).clamp(min=0) ** 2 + v * v) - thickness


def _texture(texture: int, u, v, period, pixel):
    """Mix weight (0 = first colour, 1 = second) of a texture; fades to 0.5 below the pixel
    pitch."""
    if texture == 0:
        return torch.zeros_like(u)
    w = 2 * math.pi / period
    sharp = period / (2 * math.pi * pixel)  # makes edges about one pixel wide
    if texture == 1:
        return (0.5 + 0.5 * sharp * torch.sin(w * u)).clamp(0, 1)
    if texture == 2:
        return (0.5 + 0.5 * sharp * torch.sin(w * u) * torch.sin(w * v)).clamp(0, 1)
    du = u - period * torch.round(u / period)
    dv = v - period * torch.round(v / period)
    return (0.5 - (torch.sqrt(du * du + dv * dv) - 0.3 * period) / pixel).clamp(0, 1)


def _draw_chunk(scene: dict[str, np.ndarray], rows: slice, size: int) -> np.ndarray:
    """Render images `rows` of a scene set at size x size; returns uint8 (n, 3, size, size)."""
    t = {k: torch.as_tensor(v[rows]) for k, v in scene.items() if k != "labels"}
    n = len(t["shape"])
    pixel = 2.0 / size
    axis = (torch.arange(size, dtype=torch.float64) + 0.5) * pixel - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    y, x = y.float(), x.float()

    # Background: a linear gradient between two colours.
    c, s = torch.cos(t["bg_angle"]).float(), torch.sin(t["bg_angle"]).float()
    ramp = (0.5 + 0.35 * (x[None] * c[:, None, None] + y[None] * s[:, None, None])).clamp(0, 1)
    bg = t["background"].float()
    image = bg[:, 0, :, None, None] + (bg[:, 1] - bg[:, 0])[:, :, None, None] * ramp[:, None]

    # Coverage and texture of every (image, slot) object, computed one shape kind at a time.
    flat = {
        k: t[k].reshape(n * SLOTS, *t[k].shape[2:]).float()
        for k in ("centre", "size", "angle", "period", "thickness")
    }
    kind, tex = t["shape"].reshape(-1), t["texture"].reshape(-1)
    alpha = torch.zeros(n * SLOTS, size, size)
    mix = torch.zeros(n * SLOTS, size, size)
    active = t["active"].reshape(-1)
    for shape_id in range(len(SHAPES) + 1):
        for tex_id in range(len(TEXTURES)):
            idx = torch.nonzero((kind == shape_id) & (tex == tex_id) & active).flatten()
            if len(idx) == 0:
                continue

            def col(k, idx=idx):
                return flat[k][idx][:, None, None]

            dx, dy = (
                x[None] - flat["centre"][idx, 0, None, None],
                y[None] - flat["centre"][idx, 1, None, None],
            )
            ca, sa = torch.cos(col("angle")), torch.sin(col("angle"))
            u, v = ca * dx + sa * dy, -sa * dx + ca * dy
            dist = _shape_distance(shape_id, u, v, col("size"), col("thickness"))
            alpha[idx] = (0.5 - dist / pixel).clamp(0, 1)
            mix[idx] = _texture(tex_id, u, v, col("period"), pixel)
    alpha = alpha.view(n, SLOTS, 1, size, size)
    mix = mix.view(n, SLOTS, 1, size, size)
    c1, c2 = t["colour"].float()[..., None, None], t["colour2"].float()[..., None, None]
    for slot in range(SLOTS):  # painter's order: lines, distractors, then the key shapes on top
        paint = c1[:, slot] + (c2[:, slot] - c1[:, slot]) * mix[:, slot]
        image = image + alpha[:, slot] * (paint - image)

    noise = torch.empty_like(image)
    for i in range(n):  # per-image noise stream: images do not depend on the chunking
        noise[i].normal_(generator=torch.Generator().manual_seed(int(t["noise_seed"][i])))
    image = image + noise * t["noise"].float()[:, None, None, None]
    return (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def render(
    n: int,
    num_classes: int,
    size: int,
    seed: int,
    split: str = "train",
    pixels_per_chunk: int = PIXELS_PER_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Render n scenes at size x size: (uint8 images (n, 3, size, size), int64 labels).
    The result does not depend on pixels_per_chunk (only memory use and speed do)."""
    rng = np.random.default_rng([seed, SPLIT_STREAMS[split], RENDER_VERSION])
    scene = sample_scenes(n, num_classes, rng)
    images = np.empty((n, 3, size, size), np.uint8)
    chunk = max(1, pixels_per_chunk // (size * size * SLOTS))
    # Small images make small tensor ops, where extra threads cost more than they give (10x
    # slower measured with 2 threads on a busy 2-core box at 37 px); the pixels come out the same.
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, max(1, size // 64)))
    try:
        for start in range(0, n, chunk):
            rows = slice(start, min(n, start + chunk))
            images[rows] = _draw_chunk(scene, rows, size)
    finally:
        torch.set_num_threads(threads)
    return images, scene["labels"].astype(np.int64)


def cached_render(
    cache: Path, n: int, num_classes: int, size: int, seed: int, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """render(), stored once under `cache` and memory-mapped afterwards (shared by all trials)."""
    params = {
        "n": n,
        "classes": num_classes,
        "size": size,
        "seed": seed,
        "split": split,
        "version": RENDER_VERSION,
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache / "synthetic" / f"{split}-{size}px-{key}"
    if not (folder / "labels.npy").exists():
        _check_render_memory(n, size, split)
        with _render_lock(folder):  # trials starting together render once; the others wait for it
            if not (folder / "labels.npy").exists():
                images, labels = render(n, num_classes, size, seed, split)
                _write_atomically(folder, images, labels, params)
    return np.load(folder / "images.npy", mmap_mode="r"), np.load(folder / "labels.npy")


def _check_render_memory(n: int, size: int, split: str) -> None:
    """render() holds the whole split in memory before it is written to the cache: refuse a split
    that cannot fit before allocating it (the OOM killer would end the run minutes later)."""
    needed, available = n * 3 * size * size + RENDER_WORKING_BYTES, available_bytes("cpu")
    if available is not None and needed > available:
        flag = "data.train_size (--train-size)" if split == "train" else "data.test_size"
        raise UserError(
            f"{flag}: rendering the synthetic {split} split ({n:,} images of {size} x {size} px) "
            f"needs about {human_size(needed)} of memory, more than the {human_size(available)} "
            f"available on this machine; expected fewer images or a lower resolution"
        )


@contextlib.contextmanager
def _render_lock(folder: Path):
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        handle = open(folder.parent / f".{folder.name}.lock", "w")
    except OSError as exc:
        raise UserError(
            f"data.cache_dir: cannot write the synthetic data cache in {folder.parent}: {exc}"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_atomically(folder: Path, images: np.ndarray, labels: np.ndarray, params: dict) -> None:
    """Write into a temporary folder and rename it into place: a concurrent trial either sees
    the complete folder or none (and a lost rename race just drops our copy)."""
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    np.save(tmp / "images.npy", images)
    (tmp / "params.json").write_text(json.dumps(params))
    np.save(tmp / "labels.npy", labels)
    try:
        os.rename(tmp, folder)
    except OSError:
        if not (folder / "labels.npy").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


class SyntheticSource(ImageSource):
    # Pixel statistics of rendered scenes (2,000 images at 64 px), for normalisation.
    mean, std = (0.489, 0.487, 0.484), (0.231, 0.234, 0.235)

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int):
        self.images, self.labels, self.num_classes = images, labels, num_classes
        shapes, textures, counts = class_attributes(np.arange(num_classes))
        self.class_names = [
            f"{'two ' if k == 2 else ''}{TEXTURES[t]} {SHAPES[s]}"
            for s, t, k in zip(shapes, textures, counts)
        ]

    def read(self, index: int) -> torch.Tensor:
        # copy out of the read-only memory map so transforms may work in place
        return torch.from_numpy(np.array(self.images[index]))

    def __getstate__(self):
        # Pickled for spawned workers: send the memory map's file name, not the pixels.
        state = dict(self.__dict__)
        if isinstance(self.images, np.memmap):
            state["images"] = ("memmap", self.images.filename)
        return state

    def __setstate__(self, state):
        if isinstance(state["images"], tuple):
            state["images"] = np.load(state["images"][1], mmap_mode="r")
        self.__dict__.update(state)


def open_synthetic(
    cfg, cache: Path, resolution: int
) -> tuple[SyntheticSource, SyntheticSource | None]:
    if not isinstance(cfg.num_classes, int) or not 2 <= cfg.num_classes <= MAX_CLASSES:
        raise UserError(
            f"data.num_classes: the synthetic source has 2 to {MAX_CLASSES} classes, "
            f"got {cfg.num_classes!r}"
        )
    size = render_size(resolution)
    train = SyntheticSource(
        *cached_render(cache, cfg.train_size, cfg.num_classes, size, cfg.seed, "train"),
        cfg.num_classes,
    )
    if cfg.test_size == 0:
        return train, None
    test = SyntheticSource(
        *cached_render(cache, cfg.test_size, cfg.num_classes, size, cfg.seed, "test"),
        cfg.num_classes,
    )
    return train, test
