"""JPEG decoding and the training augmentation on the device, a batch at a time.

The CPU pipeline decodes and augments every image in a DataLoader worker (dataset.py,
transforms.py).  Here the workers only read each file's bytes and its header's size and
draw the sample's augmentation parameters, seeded per sample exactly as the CPU pipeline
seeds them (sample_seed(seed, epoch, index)) and drawn in the same order with the same
torchvision transform objects: the random resized crop's box, the flip, RandAugment's ops
and signs.  The main process then, per batch:

- decodes all the JPEGs in one call (torchvision.io.decode_jpeg with device='cuda': nvJPEG);
- crops and resizes the batch to the resolution (bicubic, antialiased) as a few matrix
  products over the batch, not a call per image (resized_crop.py);
- flips the drawn samples with one call;
- applies RandAugment by groups: every sample that drew the same op with the same sign at
  the same position gets it in one batched call, at most 2 x 14 calls per position however
  large the batch (DESIGN.md 3: a per-sample loop ran at 1.6k img/s, one op set per batch
  at 227k img/s).

On a CPU device the same code, resizing image by image there, gives the CPU pipeline's
images bit for bit (the test checks it); on CUDA nvJPEG's IDCT rounds a little differently,
and the resize rounds to uint8 once, not between its passes as the CPU's uint8 resize does.
Files nvJPEG does not take (PNG, WebP, CMYK JPEGs: a header check in the worker) the
worker decodes as the CPU pipeline does, and the batch carries the image instead of the
file; a batch nvJPEG refuses is decoded file by file on the CPU, which names a broken file
in one line.  Measured against CPU workers by benchmarks/input_pipeline.py --decode device.
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
from rsearch.data.resized_crop import resized_crops
from rsearch.data.transforms import sample_seed, seeded_rng
from rsearch.errors import UserError

# A sample's row of int64 parameters: its source index, whether the worker decoded it
# (not a file nvJPEG takes), the crop box, the flip, then (op, sign) per RandAugment op.
INDEX, DECODED, TOP, LEFT, HEIGHT, WIDTH, FLIP, FIRST_OP = range(8)
# What nvJPEG decodes (Pillow calls a JPEG with an MPF segment, as phones write, "MPO");
# CMYK/YCCK JPEGs (mode CMYK) it does not decode reliably: torchvision's own tests skip them.
_DEVICE_FORMATS = ("JPEG", "MPO")


def _for_the_device(path: str) -> tuple[int, int] | None:
    """(height, width) from the header of a file nvJPEG can decode, else None."""
    try:
        with Image.open(path) as image:
            if image.format in _DEVICE_FORMATS and image.mode != "CMYK":
                width, height = image.size
                return height, width
    except OSError:
        pass  # not an image Pillow knows: decode_rgb names the file if it is broken
    return None


class EncodedSampleSet(SampleSet):
    """The training split of an ImageFolder as the device pipeline reads it: item i ->
    (the file's bytes, uint8 1-d, or the image the worker decoded when nvJPEG cannot: a PNG,
    a CMYK JPEG, ...; its augmentation parameters, int64 1-d; its label)."""

    def __init__(self, train: SampleSet):
        if not hasattr(train.source, "paths"):
            raise UserError(
                "the device pipeline reads an ImageFolder of JPEG files (data.source: imagefolder)"
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
        self.randaugment = ra = steps.get(v2.RandAugment)
        self.ops = ra.num_ops if ra is not None else 0
        # RandAugment's ops as it sees the crop (its size is fixed): (name, magnitude at the
        # recipe's setting, whether it draws a sign), computed once, not per sample
        self.op_table = []
        for name, (magnitudes_fn, signed) in (ra._AUGMENTATION_SPACE if ra else {}).items():
            magnitudes = magnitudes_fn(ra.num_magnitude_bins, *self.crop.size)
            magnitude = 0.0 if magnitudes is None else float(magnitudes[ra.magnitude])
            self.op_table.append((name, magnitude, magnitudes is not None and signed))

    def __getitem__(self, key):
        i, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        index = int(self.indices[i])
        path = self.source.paths[index]
        size = _for_the_device(path)
        if size is None:  # decoded here, as the CPU pipeline does
            data = self.source.read(index)
            size = tuple(data.shape[-2:])
        else:
            data = torch.frombuffer(bytearray(read_file(path)), dtype=torch.uint8)
        with seeded_rng(sample_seed(self.seed, epoch, index)):
            params = [index, int(data.ndim == 3), *self.draw(*size)]
        return data, torch.tensor(params, dtype=torch.int64), int(self.source.labels[index])

    def draw(self, height: int, width: int) -> list[int]:
        """The draws torchvision's Compose makes for one image, in its order (module doc)."""
        shape_only = torch.empty(()).expand(3, height, width)  # make_params reads the size only
        box = self.crop.make_params([shape_only])
        flip = bool(torch.rand(1) < self.flip_p)  # RandomHorizontalFlip skips when >= p
        params = [box["top"], box["left"], box["height"], box["width"], int(flip)]
        for _ in range(self.ops):
            op = int(torch.randint(len(self.op_table), ()))  # RandAugment._get_random_item
            negative = self.op_table[op][2] and bool(torch.rand(()) <= 0.5)
            params += [op, -1 if negative else 1]
        return params


def collate(samples):
    """((list of encoded files, (N, params) int64), (N,) labels): the files differ in length;
    `DeviceAugment(*x)` makes the first part the batch of images."""
    data, params, labels = zip(*samples)
    return (list(data), torch.stack(params)), torch.tensor(labels, dtype=torch.int64)


class DeviceAugment:
    """Decode a batch of JPEGs on `device` and apply the drawn augmentation (module doc)."""

    def __init__(
        self, encoded: EncodedSampleSet, device: torch.device, *, batched: bool | None = None
    ):
        self.set, self.device = encoded, torch.device(device)
        self.size = list(encoded.crop.size)
        # Resized crops as matrix products over the batch (resized_crop.py) on CUDA, where a
        # call per image would bound the pipeline; on a CPU torchvision's call per image, so
        # that the images are the CPU pipeline's bit for bit (its uint8 resize rounds between
        # passes; the batched one rounds once, as torchvision does on CUDA).
        self.batched = self.device.type == "cuda" if batched is None else batched
        crop = encoded.crop
        square = self.size[0] == self.size[1]
        if crop.interpolation != v2.InterpolationMode.BICUBIC or not crop.antialias or not square:
            self.batched = False  # resized_crops makes square antialiased bicubic crops only
        # nvJPEG writes its output on a stream of its own, ordered after nothing the caller
        # queued: the pipeline runs on a side stream that is idle whenever a decode starts,
        # so no queued kernel still reads the memory a decode is handed (and augmenting the
        # next batch overlaps the training step).
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def __call__(self, files: list[torch.Tensor], params: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, resolution, resolution) on the device, usable on the current stream."""
        if self.stream is None:
            return self._augment(files, params)
        consumer = torch.cuda.current_stream(self.device)
        self.stream.synchronize()  # the previous batch's augmentation only, not the training
        with torch.cuda.stream(self.stream):
            batch = self._augment(files, params)
        consumer.wait_stream(self.stream)
        batch.record_stream(consumer)  # freed later by the consumer: reused only after it ran
        return batch

    def _augment(self, files: list[torch.Tensor], params: torch.Tensor) -> torch.Tensor:
        batch = self._resized_crops(self._decode(files, params), params[:, TOP:FLIP].tolist())
        steps = self._plan(params)
        for ((op, sign), _), group in zip(steps, self._on_device([idx for _, idx in steps])):
            picked = batch.index_select(0, group)
            done = F.horizontal_flip(picked) if op is None else self._apply(picked, op, sign)
            batch.index_copy_(0, group, done)
        return batch

    def _resized_crops(self, images: list[torch.Tensor], boxes: list[list[int]]) -> torch.Tensor:
        if self.batched:
            return resized_crops(images, boxes, self.size[0])
        crop = self.set.crop
        return torch.stack(
            [
                F.resized_crop(
                    image,
                    *box,
                    self.size,
                    interpolation=crop.interpolation,
                    antialias=crop.antialias,
                )
                for image, box in zip(images, boxes)
            ]
        )

    def _plan(self, params: torch.Tensor) -> list[tuple[tuple, np.ndarray]]:
        """The flip, then every (op, sign) group per RandAugment position, in the order the
        CPU pipeline applies them, each with the batch positions it applies to."""
        table = params.numpy()
        steps = [((None, 0), np.flatnonzero(table[:, FLIP] == 1))]
        for position in range(self.set.ops):
            ops, signs = table[:, FIRST_OP + 2 * position], table[:, FIRST_OP + 2 * position + 1]
            for op, sign in sorted(set(zip(ops.tolist(), signs.tolist()))):
                steps.append(((op, sign), np.flatnonzero((ops == op) & (signs == sign))))
        return [(what, idx) for what, idx in steps if len(idx)]

    def _on_device(self, arrays: list[np.ndarray]) -> list[torch.Tensor]:
        """Index arrays on the device in one copy (from pinned memory on CUDA: asynchronous)."""
        if not arrays:
            return []
        joined = torch.from_numpy(np.concatenate(arrays))
        if self.device.type == "cuda":
            joined = joined.pin_memory()
        joined = joined.to(self.device, non_blocking=True)
        return list(torch.split(joined, [len(a) for a in arrays]))

    def _apply(self, images: torch.Tensor, op: int, sign: int) -> torch.Tensor:
        ra = self.set.randaugment
        name, magnitude, _ = self.set.op_table[op]
        return ra._apply_image_or_video_transform(
            images,
            name,
            sign * magnitude,
            interpolation=ra.interpolation,
            fill=ra._fill,
        )

    def _decode(self, files: list[torch.Tensor], params: torch.Tensor) -> list[torch.Tensor]:
        """The batch's images on the device: the files in one decode_jpeg call, the images
        the workers decoded (params DECODED) copied over."""
        decoded = params[:, DECODED].tolist()
        encoded = [(f, i) for f, i, d in zip(files, params[:, INDEX].tolist(), decoded) if not d]
        images = iter(self._decode_files(encoded))
        return [
            f.to(self.device, non_blocking=True) if d else next(images)
            for f, d in zip(files, decoded)
        ]

    def _decode_files(self, encoded: list[tuple[torch.Tensor, int]]) -> list[torch.Tensor]:
        if not encoded:
            return []
        try:
            return decode_jpeg([f for f, _ in encoded], mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            # The batch call does not say which file failed: decode them one by one on the
            # CPU, which names a broken file in one line (and decodes what nvJPEG would not).
            paths = self.set.source.paths
            return [decode_rgb(f.numpy().tobytes(), paths[i]).to(self.device) for f, i in encoded]
