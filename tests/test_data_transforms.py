"""The recipe's transforms on uint8 tensors, seeded per sample, and normalisation."""

import torch

from rsearch.data.transforms import (
    EvalTransform,
    Normalize,
    sample_seed,
    seeded_rng,
    train_transform,
)


def _image(channels=3, height=40, width=48, seed=0):
    return torch.randint(
        0,
        256,
        (channels, height, width),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(seed),
    )


def test_train_transform_gives_uint8_at_the_resolution_for_rgb_and_grey():
    for channels in (3, 1):
        out = train_transform(24)(_image(channels))
        assert out.shape == (channels, 24, 24) and out.dtype == torch.uint8


def test_same_sample_seed_same_augmentation_other_seed_other_augmentation():
    t, image = train_transform(24), _image()
    with seeded_rng(sample_seed(0, 0, 5)):
        a = t(image)
    with seeded_rng(sample_seed(0, 0, 5)):
        b = t(image)
    with seeded_rng(sample_seed(0, 1, 5)):
        c = t(image)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_seeded_rng_leaves_the_global_generator_where_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded_rng(99):
        train_transform(16)(_image())
    assert torch.equal(torch.rand(3), expected)


def test_randaugment_off_and_on_differ():
    image = _image()
    with seeded_rng(1):
        plain = train_transform(24, randaugment_ops=0)(image)
    with seeded_rng(1):
        augmented = train_transform(24, randaugment_ops=2, randaugment_magnitude=15)(image)
    assert len(train_transform(24, randaugment_ops=0).transforms) == 2
    assert not torch.equal(plain, augmented)


def test_crop_min_scale_one_keeps_the_whole_image_up_to_aspect():
    # Scale 1 with aspect fixed by the crop search means the crop is (nearly) the whole square
    # image.
    image = _image(height=32, width=32)
    with seeded_rng(3):
        out = train_transform(32, randaugment_ops=0, crop_min_scale=1.0)(image)
    flipped = torch.equal(out, image.flip(-1))
    assert torch.equal(out, image) or flipped


def test_eval_transform_center_crops_seven_eighths_of_the_short_side():
    # A 64x80 image whose outer 4-pixel band (1/16 of the short side per edge) is white:
    # the 87.5% center crop of the short side (56 px) must contain none of it.
    image = torch.full((3, 64, 80), 255, dtype=torch.uint8)
    image[:, 4:60, 4:76] = 0
    exact = EvalTransform(56)(image)
    assert exact.shape == (3, 56, 56) and int(exact.max()) == 0
    resized = EvalTransform(28)(image)
    assert resized.shape == (3, 28, 28) and int(resized[:, 2:-2, 2:-2].max()) == 0
    up = EvalTransform(112)(_image(height=64, width=64))
    assert up.shape == (3, 112, 112)


def test_normalize_maps_uint8_to_standardised_float_per_channel_and_per_batch():
    norm = Normalize((0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    image = torch.stack([torch.full((2, 2), v, dtype=torch.uint8) for v in (255, 0, 51)])
    out = norm(image)
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, 0, 0], torch.tensor([1.0, -1.0, 0.2]), atol=1e-6)
    batch = torch.stack([image, image])
    assert torch.allclose(norm(batch), torch.stack([out, out]))


def test_sample_seeds_differ_across_each_argument_and_are_stable():
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 450
    assert all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(1, 2, 3) == sample_seed(1, 2, 3)
