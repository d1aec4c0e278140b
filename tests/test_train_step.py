"""The CUDA-graph training step (recipe.cuda_graphs, train/step.py) against today's eager step.

A CPU cannot capture a graph, but it runs the captured body uncaptured: static input
buffers, the LR and EMA weight as tensors, torch's fused SGD (RMSprop: foreach), the EMA as
a tensor-weight lerp, the loss summed on the device.  These tests check that body, with and
without the fused optimizer, against the eager step parameter for parameter."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from test_train import _roundtrip, tiny_config

from rsearch import metrics as M
from rsearch.cli import main
from rsearch.train.loop import Trainer, train_epochs
from rsearch.train.optim import WeightEMA, make_optimizer
from rsearch.train.step import EagerStep, GraphStep


def _config(tmp_path, **recipe):
    cfg = tiny_config(tmp_path, epochs=2, eval_test=False)
    # dropout and stochastic depth on: both steps must draw the same random numbers
    changes = dict(dropout=0.25, stochastic_depth=0.1, **recipe)
    return dataclasses.replace(cfg, recipe=cfg.recipe.replace(**changes))


def _trained(cfg, *, unfused: bool = False) -> tuple[Trainer, list[dict]]:
    trainer = Trainer(cfg)
    if unfused:  # the graph step's body with today's (unfused) optimizer
        trainer.optimizer = make_optimizer(trainer.core, cfg.recipe)
        trainer.train_step = GraphStep(trainer.step_parts(), trainer.device)
    return trainer, [e.metrics for e in trainer.epochs()]


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_graph_step_body_is_the_eager_step_bit_for_bit(tmp_path, optimizer):
    """Two epochs: static buffers, the LR and EMA weight as tensors, the device loss sum, with
    an unfused update (SGD: today's; RMSprop: its graph-safe foreach form) change nothing."""
    eager_cfg = _config(tmp_path, optimizer=optimizer)
    graph_cfg = dataclasses.replace(eager_cfg, recipe=eager_cfg.recipe.replace(cuda_graphs=True))
    eager, eager_rows = _trained(eager_cfg)
    graph, graph_rows = _trained(graph_cfg, unfused=optimizer == "sgd")
    assert type(eager.train_step) is EagerStep and type(graph.train_step) is GraphStep
    for part in ("core", "ema"):
        ours, theirs = (
            _weights(getattr(t, part) if part == "core" else t.ema.module) for t in (graph, eager)
        )
        assert all(torch.equal(ours[name], theirs[name]) for name in theirs), part
    assert graph_rows == [
        {
            **row,
            M.IMG_PER_S: g[M.IMG_PER_S],
            M.EPOCH_SECONDS: g[M.EPOCH_SECONDS],
            M.WALL_S: g[M.WALL_S],
        }
        for row, g in zip(eager_rows, graph_rows)
    ]


def test_fused_sgd_step_rounds_like_the_eager_step(tmp_path):
    """The graph's fused SGD (what CUDA captures) against today's update, three steps at the
    peak LR from one state: equal up to float rounding (later steps amplify rounding: the
    bit-for-bit check above uses the unfused update)."""
    cfg = _config(tmp_path)
    initial = Trainer(cfg)
    batches = list(itertools.islice(iter(initial._loader("train")), 3))
    peak = initial.schedule.warmup  # the first step at the peak LR

    def stepped(cuda_graphs: bool) -> Trainer:
        # built right before its steps: Trainer seeds torch's generator, so both draw the
        # same dropout masks
        trainer = Trainer(
            dataclasses.replace(cfg, recipe=cfg.recipe.replace(cuda_graphs=cuda_graphs))
        )
        for k, (x, y) in enumerate(batches):
            trainer.train_step(x, y, peak + k)
        return trainer

    eager, graph = stepped(False), stepped(True)
    assert graph.optimizer.defaults["fused"] is True
    # the same weight-decay groups (BN parameters and biases without decay)
    assert [(len(g["params"]), g["weight_decay"]) for g in graph.optimizer.param_groups] == [
        (len(g["params"]), g["weight_decay"]) for g in eager.optimizer.param_groups
    ]
    for part in ("core", "ema"):
        ours = _weights(graph.core if part == "core" else graph.ema.module)
        theirs = _weights(eager.core if part == "core" else eager.ema.module)
        moved = _weights(initial.core if part == "core" else initial.ema.module)
        for name, value in theirs.items():
            torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6, msg=name)
        # and the steps did move the weights (far more than that tolerance)
        assert max((theirs[n].float() - moved[n].float()).abs().max() for n in theirs) > 1e-3
    assert graph.train_step.take_loss_sum().item() == pytest.approx(
        eager.train_step.take_loss_sum().item(), rel=1e-5
    )


def test_graph_step_resumes_exactly(tmp_path):
    cfg = _config(tmp_path, cuda_graphs=True)
    straight = [e.metrics for e in train_epochs(cfg)]
    state = torch.load(_roundtrip(next(train_epochs(cfg)).state(), tmp_path), weights_only=True)
    resumed = [e.metrics for e in train_epochs(cfg, resume=state)]
    for a, b in zip(straight[1:], resumed):
        for key in (M.TRAIN_LOSS, M.MINIVAL_TOP1, M.MINIVAL_LOSS, M.LR):
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key


def test_graph_step_refuses_a_batch_of_another_shape(tmp_path):
    trainer = Trainer(_config(tmp_path, cuda_graphs=True))
    x, y = next(iter(trainer._loader("train")))
    trainer.train_step(x, y, 0)
    with pytest.raises(RuntimeError, match="cuda_graphs: every training batch must have one"):
        trainer.train_step(x[:-1], y[:-1], 1)


def test_ema_blend_with_a_tensor_weight_is_the_float_update():
    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    by_float, by_tensor = WeightEMA(source, 0.99), WeightEMA(source, 0.99)
    source(torch.randn(8, 3))  # moves BN's running statistics and its batch count
    with torch.no_grad():
        source[0].weight.add_(1.0)
    by_float.update(source, step=5)
    by_tensor.blend(source, torch.tensor(1.0 - by_tensor.decay_at(5)))
    for a, b in zip(by_float.module.state_dict().values(), by_tensor.module.state_dict().values()):
        assert torch.equal(a, b)
    assert by_tensor.module[1].num_batches_tracked.item() == 1


def test_cuda_graphs_take_one_worker(tmp_path, capsys):
    with pytest.raises(ValueError, match="workers: expected 1 with cuda_graphs"):
        dataclasses.replace(_config(tmp_path, cuda_graphs=True), workers=2)
    code = main(["train", "--depth", "26", "--width", "0.25", "--cuda-graphs", "--workers", "2"])
    expected = "--workers: expected 1 with cuda_graphs (the DDP all-reduce is not captured), got 2"
    assert code == 2 and capsys.readouterr().err.strip().endswith(expected)
