"""The recipe's image transforms, on uint8 tensors, with per-sample seeded randomness.

Train: Inception-style random resized crop (area crop_min_scale..100%, aspect 3/4..4/3,
bicubic), horizontal flip, RandAugment(num_ops, magnitude) — torchvision.transforms.v2.
Eval: center-crop 87.5% of the short side, resize bicubically to the resolution (one
resize instead of resize-then-crop; same geometry up to rounding).

torchvision's random transforms draw from the global torch generator.  `seeded_rng`
points that generator at a seed derived from (seed, epoch, sample index) for the one
sample and restores it afterwards, so augmentation is a pure function of those three
numbers (independent of DataLoader workers and ranks) and the caller's RNG stream is
left untouched.  Measured: ~2.5 us per sample through torch.default_generator, against
~100 us for torch.manual_seed/fork_rng (which also visit every accelerator backend).
"""

from __future__ import annotations

import contextlib

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

EVAL_CROP_FRACTION = 0.875
_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one sample (SplitMix64 over the three numbers)."""
    z = 0
    for part in (seed, epoch, index):
        z = (z + int(part) + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z >> 1


@contextlib.contextmanager
def seeded_rng(seed: int):
    """Run the block with the global CPU torch generator seeded by `seed`; restore it after."""
    generator = torch.default_generator
    saved = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(saved)


def train_transform(
    resolution: int,
    randaugment_ops: int = 2,
    randaugment_magnitude: int = 10,
    crop_min_scale: float = 0.08,
) -> v2.Transform:
    steps = [
        v2.RandomResizedCrop(
            resolution,
            scale=(crop_min_scale, 1.0),
            ratio=(3 / 4, 4 / 3),
            interpolation=InterpolationMode.BICUBIC,
            antialias=True,
        ),
        v2.RandomHorizontalFlip(),
    ]
    if randaugment_ops > 0:
        steps.append(v2.RandAugment(num_ops=randaugment_ops, magnitude=randaugment_magnitude))
    return v2.Compose(steps)


class EvalTransform:
    """Center-crop EVAL_CROP_FRACTION of the short side, resize bicubically to `resolution`."""

    def __init__(self, resolution: int):
        self.resolution = resolution

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        side = max(1, round(min(height, width) * EVAL_CROP_FRACTION))
        top, left = (height - side) // 2, (width - side) // 2
        if side == self.resolution:
            return image[..., top : top + side, left : left + side]
        return F.resized_crop(
            image,
            top,
            left,
            side,
            side,
            [self.resolution, self.resolution],
            interpolation=InterpolationMode.BICUBIC,
            antialias=True,
        )


class Normalize:
    """uint8 (C, H, W) -> float32, scaled to [0, 1], minus mean, over std (per channel).
    Works on batches (N, C, H, W) on any device too (normalise on the GPU, ship uint8)."""

    def __init__(self, mean, std):
        mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        # (x / 255 - mean) / std as one multiply-add: x * scale + shift
        self._constants = {torch.device("cpu"): (1 / (255 * std), -mean / std)}

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        device = image.device
        if device not in self._constants:  # copied once per device, not once per batch
            scale, shift = self._constants[torch.device("cpu")]
            self._constants[device] = (scale.to(device), shift.to(device))
        scale, shift = self._constants[device]
        return torch.addcmul(shift, image.float(), scale)
