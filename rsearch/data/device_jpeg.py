"""JPEG decoding and the training augmentation on the device, a batch at a time.

The CPU pipeline decodes and augments every image in a DataLoader worker (dataset.py,
transforms.py).  Here the workers only read each file's bytes and its header's size and
draw the sample's augmentation parameters, seeded per sample exactly as the CPU pipeline
seeds them (sample_seed(seed, epoch, index)) and drawn in the same order with the same
torchvision transform objects: the random resized crop's box, the flip, RandAugment's ops
and signs.  The main process then, per batch:

- decodes all the JPEGs in one call (torchvision.io.decode_jpeg with device='cuda': nvJPEG);
- crops and resizes each image to the resolution (bicubic, antialiased: one call per image,
  as the images differ in size);
- flips the drawn samples with one call;
- applies RandAugment by groups: every sample that drew the same op with the same sign at
  the same position gets it in one batched call, at most 2 x 14 calls per position however
  large the batch (DESIGN.md 3: a per-sample loop ran at 1.6k img/s, one op set per batch
  at 227k img/s).

On a CPU device the same code gives the CPU pipeline's images bit for bit (the test checks
it); on CUDA nvJPEG's IDCT rounds a little differently.  JPEG files only: a PNG or WebP in
the folder is one line naming it.  Measured against CPU workers by
benchmarks/input_pipeline.py --decode device.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from rsearch.data.dataset import SampleSet
from rsearch.data.images import decode_rgb, read_file
from rsearch.data.transforms import sample_seed, seeded_rng
from rsearch.errors import UserError

# A sample's row of int64 parameters: its source index, the crop box, the flip, then
# (op, sign) per RandAugment op.
INDEX, TOP, LEFT, HEIGHT, WIDTH, FLIP, FIRST_OP = range(7)


def jpeg_size(path: str) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding it."""
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                raise UserError(
                    f"image {path}: the device pipeline decodes JPEG only, "
                    f"this is {image.format or 'not an image'}"
                )
            width, height = image.size
    except OSError as exc:
        raise UserError(f"image {path}: cannot read its header: {exc}") from None
    return height, width


class EncodedSampleSet(SampleSet):
    """The training split of an ImageFolder as the device pipeline reads it: item i ->
    (the file's bytes, uint8 1-d; its augmentation parameters, int64 1-d; its label)."""

    def __init__(self, train: SampleSet):
        if not hasattr(train.source, "paths"):
            raise UserError(
                "the device pipeline reads an ImageFolder of JPEG files (data.source: imagefolder)"
            )
        others = [p for p in train.source.paths[train.indices] if not _named_jpeg(p)]
        if others:
            raise UserError(
                f"decode: device decodes JPEG files only; {others[0]} is not one "
                f"({len(others)} such file(s) in the training split); decode them on the cpu"
            )
        super().__init__(
            train.source,
            train.indices,
            train.transform,
            random=True,
            normalize=None,
            seed=train.seed,
            epoch=train.epoch,
        )
        steps = {type(step): step for step in train.transform.transforms}
        self.crop = steps[v2.RandomResizedCrop]
        self.flip_p = steps[v2.RandomHorizontalFlip].p
        self.randaugment = steps.get(v2.RandAugment)
        self.ops = self.randaugment.num_ops if self.randaugment is not None else 0

    def __getitem__(self, key):
        i, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        index = int(self.indices[i])
        path = self.source.paths[index]
        height, width = jpeg_size(path)
        with seeded_rng(sample_seed(self.seed, epoch, index)):
            params = [index, *self.draw(height, width)]
        data = torch.frombuffer(bytearray(read_file(path)), dtype=torch.uint8)
        return data, torch.tensor(params, dtype=torch.int64), int(self.source.labels[index])

    def draw(self, height: int, width: int) -> list[int]:
        """The draws torchvision's Compose makes for one image, in its order (module doc)."""
        shape_only = torch.empty(()).expand(3, height, width)  # make_params reads the size only
        box = self.crop.make_params([shape_only])
        flip = bool(torch.rand(1) < self.flip_p)  # RandomHorizontalFlip skips when >= p
        params = [box["top"], box["left"], box["height"], box["width"], int(flip)]
        space = self.randaugment._AUGMENTATION_SPACE if self.ops else {}
        keys = tuple(space)
        size = self.crop.size
        for _ in range(self.ops):
            op = int(torch.randint(len(keys), ()))  # RandAugment._get_random_item
            magnitudes_fn, signed = space[keys[op]]
            magnitudes = magnitudes_fn(self.randaugment.num_magnitude_bins, *size)
            negative = magnitudes is not None and signed and bool(torch.rand(()) <= 0.5)
            params += [op, -1 if negative else 1]
        return params


def _named_jpeg(path: str) -> bool:
    return path.lower().endswith((".jpg", ".jpeg"))


def collate(samples):
    """((list of encoded files, (N, params) int64), (N,) labels): the files differ in length;
    `DeviceAugment(*x)` makes the first part the batch of images."""
    data, params, labels = zip(*samples)
    return (list(data), torch.stack(params)), torch.tensor(labels, dtype=torch.int64)


class DeviceAugment:
    """Decode a batch of JPEGs on `device` and apply the drawn augmentation (module doc)."""

    def __init__(self, encoded: EncodedSampleSet, device: torch.device):
        self.set, self.device = encoded, torch.device(device)
        self.size = list(encoded.crop.size)
        ra = encoded.randaugment
        if ra is not None:
            self.op_names = tuple(ra._AUGMENTATION_SPACE)
            # each op's magnitude at the recipe's setting, for the crop's size (RandAugment
            # computes it for the image it is given: the crop)
            self.magnitudes = []
            for name in self.op_names:
                magnitudes = ra._AUGMENTATION_SPACE[name][0](ra.num_magnitude_bins, *self.size)
                self.magnitudes.append(
                    0.0 if magnitudes is None else float(magnitudes[ra.magnitude])
                )

    def __call__(self, files: list[torch.Tensor], params: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, resolution, resolution) on the device."""
        images = self._decode(files, params[:, INDEX])
        crop = self.set.crop
        batch = torch.stack(
            [
                F.resized_crop(
                    image,
                    *(int(v) for v in row[TOP:FLIP]),
                    self.size,
                    interpolation=crop.interpolation,
                    antialias=crop.antialias,
                )
                for image, row in zip(images, params)
            ]
        )
        flips = _indices(params[:, FLIP] == 1, self.device)
        if flips is not None:
            batch.index_copy_(0, flips, F.horizontal_flip(batch.index_select(0, flips)))
        for position in range(self.set.ops):
            ops = params[:, FIRST_OP + 2 * position]
            signs = params[:, FIRST_OP + 2 * position + 1]
            for op, sign in sorted(set(zip(ops.tolist(), signs.tolist()))):
                group = _indices((ops == op) & (signs == sign), self.device)
                batch.index_copy_(0, group, self._apply(batch.index_select(0, group), op, sign))
        return batch

    def _apply(self, images: torch.Tensor, op: int, sign: int) -> torch.Tensor:
        ra = self.set.randaugment
        return ra._apply_image_or_video_transform(
            images,
            self.op_names[op],
            sign * self.magnitudes[op],
            interpolation=ra.interpolation,
            fill=ra._fill,
        )

    def _decode(self, files: list[torch.Tensor], indices: torch.Tensor) -> list[torch.Tensor]:
        try:
            return decode_jpeg(files, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            # The batch call does not say which file failed: find it (one line naming it).
            for data, index in zip(files, indices.tolist()):
                decode_rgb(data.numpy().tobytes(), self.set.source.paths[index])
            raise


def _indices(mask: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """The host mask's True positions as a device index tensor (no device-to-host sync)."""
    found = np.flatnonzero(mask.numpy())
    return torch.from_numpy(found).to(device, non_blocking=True) if len(found) else None
