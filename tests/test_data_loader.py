"""Loaders: order a pure function of (seed, epoch), exact sharding for data parallelism,
augmentation independent of workers and ranks, the caller's RNG untouched."""

import numpy as np
import pytest
import torch

from rsearch.data import DataConfig, epoch_order, load_data, make_loader
from rsearch.data.loader import LOCALITY_WINDOW
from rsearch.errors import UserError


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    cfg = DataConfig(train_size=122, test_size=30, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return load_data(cfg, resolution=16)


def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def _plan(loader):
    return [list(b) for b in loader.batch_sampler.batches]


def test_order_is_a_pure_function_of_seed_and_epoch():
    a = epoch_order(100, seed=1, epoch=2)
    assert np.array_equal(a, epoch_order(100, seed=1, epoch=2))
    assert np.array_equal(np.sort(a), np.arange(100))
    assert not np.array_equal(a, epoch_order(100, seed=1, epoch=3))
    assert not np.array_equal(a, epoch_order(100, seed=2, epoch=2))


def test_train_loader_drops_the_last_incomplete_batch_and_eval_keeps_it(splits):
    n = len(splits.train)  # 112: 122 minus 1 minival image per class
    train = make_loader(splits.train, 16, train=True, seed=0, epoch=0)
    assert len(train) == n // 16
    assert all(len(b) == 16 for b in _plan(train))
    evaluation = make_loader(splits.minival, 4, train=False, seed=0, epoch=0)
    assert sum(len(b) for b in _plan(evaluation)) == len(splits.minival)


def test_two_ranks_batches_together_are_the_one_rank_batches(splits):
    single = _batches(make_loader(splits.train, 8, train=True, seed=3, epoch=1))
    ranks = [
        _batches(make_loader(splits.train, 4, train=True, seed=3, epoch=1, rank=r, world_size=2))
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for i, (x, y) in enumerate(single):
        assert torch.equal(torch.cat([ranks[0][i][0], ranks[1][i][0]]), x)
        assert torch.equal(torch.cat([ranks[0][i][1], ranks[1][i][1]]), y)


def test_rank_shards_are_disjoint_and_equal_sized():
    # 122 items, 3 ranks x 5: 8 global batches of 15, the last 2 items dropped.
    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 122

        def __getitem__(self, i):
            return i

    shards = [
        sum(_plan(make_loader(Items(), 5, train=True, seed=0, epoch=0, rank=r, world_size=3)), [])
        for r in range(3)
    ]
    assert [len(s) for s in shards] == [40, 40, 40]
    assert len(set().union(*shards)) == 120


def test_eval_shards_cover_every_sample_exactly_once(splits):
    test = splits.test  # 30 samples over 4 ranks: shards of 8, 8, 7, 7
    seen = []
    for rank in range(4):
        loader = make_loader(test, 3, train=False, seed=0, epoch=0, rank=rank, world_size=4)
        seen.extend(sum(_plan(loader), []))
        labels = torch.cat([y for _, y in loader])
        assert labels.tolist() == [int(test.labels[i]) for i in sum(_plan(loader), [])]
    assert sorted(seen) == list(range(len(test)))


def test_augmentation_does_not_depend_on_the_number_of_workers(splits):
    inline = _batches(make_loader(splits.train, 16, train=True, seed=0, epoch=4))
    workers = _batches(make_loader(splits.train, 16, train=True, seed=0, epoch=4, num_workers=2))
    assert len(inline) == len(workers)
    for (xa, ya), (xb, yb) in zip(inline, workers):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_a_reused_loader_with_set_epoch_equals_fresh_loaders_per_epoch(splits):
    reused = make_loader(splits.train, 16, train=True, seed=2, epoch=0, num_workers=2)
    for epoch in (0, 1, 2):
        reused.set_epoch(epoch)
        fresh = _batches(make_loader(splits.train, 16, train=True, seed=2, epoch=epoch))
        again = _batches(reused)
        assert all(
            torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(fresh, again)
        )
    assert not torch.equal(
        fresh[0][0], _batches(make_loader(splits.train, 16, train=True, seed=2, epoch=0))[0][0]
    )


def test_a_multi_epoch_loader_runs_the_per_epoch_batches_back_to_back(splits):
    stream = make_loader(splits.train, 16, train=True, seed=2, epoch=1, epochs=3, num_workers=1)
    per_epoch = stream.steps_per_epoch
    assert per_epoch == len(splits.train) // 16 and len(stream) == 3 * per_epoch
    batches = _batches(stream)
    for k, epoch in enumerate((1, 2, 3)):
        fresh = _batches(make_loader(splits.train, 16, train=True, seed=2, epoch=epoch))
        mine = batches[k * per_epoch : (k + 1) * per_epoch]
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(fresh, mine))


def test_augmentation_changes_with_the_epoch_but_not_with_the_order(splits):
    a = splits.train.at_epoch(0, 0)[5][0]
    assert torch.equal(a, splits.train.at_epoch(0, 0)[5][0])
    assert not torch.equal(a, splits.train.at_epoch(0, 1)[5][0])
    assert not torch.equal(a, splits.train.at_epoch(1, 0)[5][0])


def test_iterating_a_loader_leaves_the_global_rng_untouched(splits):
    torch.manual_seed(42)
    expected = torch.rand(4)
    torch.manual_seed(42)
    for _ in make_loader(splits.train, 16, train=True, seed=0, epoch=0):
        pass
    assert torch.equal(torch.rand(4), expected)


def test_items_are_normalised_float_and_eval_items_are_deterministic(splits):
    x, y = splits.train[0]
    assert x.dtype == torch.float32 and x.shape == (3, 16, 16) and isinstance(y, int)
    assert -3 < float(x.mean()) < 3
    assert torch.equal(splits.minival[0][0], splits.minival.at_epoch(5, 9)[0][0])


def test_uint8_items_plus_the_normalizer_equal_normalised_items(tmp_path):
    cfg = DataConfig(train_size=40, test_size=0, cache_dir=str(tmp_path))
    plain = load_data(cfg, resolution=16)
    raw = load_data(cfg, resolution=16, normalize=False)
    assert raw.test is None and plain.test is None
    x, _ = raw.train[3]
    assert x.dtype == torch.uint8
    assert torch.allclose(raw.normalizer()(x), plain.train[3][0], atol=1e-5)


def test_windowed_order_keeps_reads_within_a_few_groups():
    groups = np.repeat(np.arange(20), 10)  # 20 row groups of 10 rows
    order = epoch_order(200, seed=0, epoch=0, groups=groups)
    assert np.array_equal(np.sort(order), np.arange(200))
    window = LOCALITY_WINDOW * 10
    for start in range(0, 200, window):
        assert len(set(groups[order[start : start + window]])) == LOCALITY_WINDOW
    assert not np.array_equal(order, epoch_order(200, seed=0, epoch=1, groups=groups))


def test_bad_loader_arguments_are_user_errors(splits):
    with pytest.raises(
        UserError,
        match="batch_size: the training split has 112 images, fewer than one global batch of 128",
    ):
        make_loader(splits.train, 64, train=True, seed=0, epoch=0, world_size=2)
    with pytest.raises(UserError, match="batch_size: expected a positive integer"):
        make_loader(splits.train, 0, train=True, seed=0, epoch=0)
    with pytest.raises(UserError, match="rank/world_size"):
        make_loader(splits.train, 4, train=True, seed=0, epoch=0, rank=2, world_size=2)
