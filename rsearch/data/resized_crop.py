"""Resized crops of a whole batch at once, for the device pipeline (device_jpeg.py).

What torchvision's F.resized_crop(image, top, left, height, width, [size, size],
BICUBIC, antialias=True) makes of each image, as matrix products over the batch instead of
one resize call per image.  On a GPU one image's resize is microseconds of work but tens
of microseconds of the host's time to issue (several kernels, from Python); at 256 images
a batch that bounds the pipeline (DESIGN.md 3: a per-sample GPU loop ran at 1.6k img/s).

Antialiased resampling is separable and linear: out = Wv . crop . Wh^T, where row i of Wv
holds output row i's filter taps over the input rows.  The taps are torch's
upsample_bicubic2d_aa's (Keys' cubic with a = -0.5, widened by the scale when shrinking,
normalised to sum 1; an unscaled side is the identity, as torchvision skips the resize
there).  The crop's offset is written into the matrices (zero outside the crop), so whole
images go in: images of one shape are stacked as they are, others zero-padded to their
chunk's largest (the padding is never read).  Chunks bound the working set
(CHUNK_ELEMENTS); the work grows with the whole image, not the crop: fine for photographs
of ImageNet's size, about 3 TFLOP a batch of 256 twelve-megapixel ones.  Results equal
torchvision's within one grey level (float rounding; TF32 products, if a user enables them,
move a few percent of the pixels by one).
"""

from __future__ import annotations

import torch

# A chunk's working set at most, in float32 elements (512 MB): its padded images and the tap
# matrices with _taps' temporaries, so that neither large photographs nor banner-shaped
# images (small H x W, large H + W) blow up the device's memory.
CHUNK_ELEMENTS = 2**27
_TAP_TEMPORARIES = 6  # (k, size, H + W) tensors alive at once while _taps runs
_A = -0.5  # the cubic's parameter in antialiased mode (PIL's, and torch's)


def resized_crops(images: list[torch.Tensor], boxes: list[list[int]], size: int) -> torch.Tensor:
    """uint8 (N, C, size, size): images[i] (uint8 (C, H, W), any sizes, one device) cropped
    to boxes[i] = (top, left, height, width), a box inside the image, and resized as
    torchvision does.  Computed in float32 (outside autocast: bf16 products would move a
    fifth of the pixels by a grey level or two)."""
    _check(images, boxes)
    device = images[0].device
    chunks = _chunks(images, size)
    order = [i for chunk in chunks for i in chunk]
    # The boxes and positions of every chunk in one copy, from pinned memory on CUDA: a copy
    # from pageable memory would wait for the GPU (here: for the training step's stream).
    host = torch.tensor([boxes[i] + [i] for i in order], dtype=torch.float32)
    on_device = (host.pin_memory() if device.type == "cuda" else host).to(device, non_blocking=True)
    out = torch.empty(
        (len(images), images[0].shape[0], size, size), dtype=torch.uint8, device=device
    )
    first = 0
    with torch.autocast(device.type, enabled=False):
        for chunk in chunks:
            part = on_device[first : first + len(chunk)]
            first += len(chunk)
            stacked = _stack([images[i] for i in chunk]).float()
            rows = _taps(part[:, 0], part[:, 2], stacked.shape[-2], size)  # (k, size, H)
            cols = _taps(part[:, 1], part[:, 3], stacked.shape[-1], size)  # (k, size, W)
            resized = rows.unsqueeze(1) @ (stacked @ cols.transpose(1, 2).unsqueeze(1))
            resized = resized.clamp_(0, 255).round_().to(torch.uint8)
            out.index_copy_(0, part[:, 4].long(), resized)
    return out


def _check(images: list[torch.Tensor], boxes: list[list[int]]) -> None:
    """What RandomResizedCrop always gives; anything else would be resampled wrongly."""
    channels = images[0].shape[0]
    for image, (top, left, height, width) in zip(images, boxes, strict=True):
        if image.shape[0] != channels:
            raise ValueError(f"resized_crops: images of {channels} and {image.shape[0]} channels")
        if not (0 <= top and 0 <= left and height > 0 and width > 0):
            raise ValueError(f"resized_crops: an empty box {[top, left, height, width]}")
        if top + height > image.shape[-2] or left + width > image.shape[-1]:
            raise ValueError(
                f"resized_crops: box {[top, left, height, width]} outside a "
                f"{tuple(image.shape[-2:])} image"
            )


def _chunks(images: list[torch.Tensor], size: int) -> list[list[int]]:
    """Image indices in chunks of similar shapes (sorted by shape), each chunk's working set
    within CHUNK_ELEMENTS (an image larger than that alone)."""
    order = sorted(range(len(images)), key=lambda i: tuple(images[i].shape[-2:]))
    channels = images[0].shape[0]
    chunks, height, width = [], 0, 0
    for i in order:
        h, w = images[i].shape[-2:]
        grown = (max(height, h), max(width, w))
        each = channels * grown[0] * grown[1] + _TAP_TEMPORARIES * size * (grown[0] + grown[1])
        if chunks and (len(chunks[-1]) + 1) * each <= CHUNK_ELEMENTS:
            chunks[-1].append(i)
            height, width = grown
        else:
            chunks.append([i])
            height, width = h, w
    return chunks


def _stack(images: list[torch.Tensor]) -> torch.Tensor:
    """(k, C, H, W): stacked when the shapes agree, else zero-padded to the largest."""
    if len({tuple(image.shape) for image in images}) == 1:
        return torch.stack(images)
    height = max(image.shape[-2] for image in images)
    width = max(image.shape[-1] for image in images)
    padded = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for slot, image in zip(padded, images):
        slot[:, : image.shape[-2], : image.shape[-1]].copy_(image)
    return padded


def _taps(start: torch.Tensor, extent: torch.Tensor, full: int, size: int) -> torch.Tensor:
    """(k, size, full) resampling weights: output pixel i of each crop [start, start +
    extent) over the `full` input pixels, as torch's _compute_indices_weights_aa."""
    scale = (extent / size)[:, None, None]  # input pixels per output pixel
    widen = scale.clamp(min=1.0)  # the filter widens only when shrinking
    center = scale * (torch.arange(size, device=start.device)[None, :, None] + 0.5)
    offset = torch.arange(full, device=start.device)[None, None, :] - start[:, None, None]
    weights = _cubic((offset - center + 0.5) / widen)  # zero beyond the filter's support
    inside = (offset >= 0) & (offset < extent[:, None, None])  # taps read the crop alone
    weights = torch.where(inside, weights, 0.0)
    return weights / weights.sum(-1, keepdim=True)


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel, a = -0.5 (torch's aa bicubic filter)."""
    x = x.abs()
    near = ((_A + 2) * x - (_A + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * _A
    return torch.where(x < 1, near, torch.where(x < 2, far, 0.0))
