"""The CUDA-graph training step (recipe.cuda_graphs, train/step.py) against today's eager step.

A CPU cannot capture a graph, but it runs the captured body uncaptured: static input
buffers, the LR and EMA weight as tensors, torch's fused SGD (RMSprop: foreach), the EMA as
a tensor-weight lerp, the loss summed on the device.  These tests check that body, with and
without the fused optimizer, against the eager step parameter for parameter."""

from __future__ import annotations

import dataclasses

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
def test_graph_step_gives_the_eager_steps_parameters(tmp_path, optimizer):
    eager_cfg = _config(tmp_path, optimizer=optimizer)
    graph_cfg = dataclasses.replace(eager_cfg, recipe=eager_cfg.recipe.replace(cuda_graphs=True))
    eager, eager_rows = _trained(eager_cfg)
    graph, graph_rows = _trained(graph_cfg)
    # RMSprop has no fused kernel: its graph-safe form is foreach, checked by `graph`
    unfused, unfused_rows = (
        _trained(graph_cfg, unfused=True) if optimizer == "sgd" else (graph, graph_rows)
    )
    assert type(eager.train_step) is EagerStep and type(graph.train_step) is GraphStep
    # the graph-safe update: fused SGD, or foreach RMSprop (capturable needs CUDA)
    assert graph.optimizer.defaults[{"sgd": "fused", "rmsprop": "foreach"}[optimizer]] is True
    # same weight-decay groups (BN parameters and biases without decay)
    assert [(len(g["params"]), g["weight_decay"]) for g in graph.optimizer.param_groups] == [
        (len(g["params"]), g["weight_decay"]) for g in eager.optimizer.param_groups
    ]
    reference = {"model": _weights(eager.core), "ema": _weights(eager.ema.module)}
    for trainer in (graph, unfused):
        for part, module in (("model", trainer.core), ("ema", trainer.ema.module)):
            for name, value in _weights(module).items():
                torch.testing.assert_close(
                    value, reference[part][name], rtol=1e-6, atol=1e-7, msg=f"{part} {name}"
                )
    # without the fused kernel the body is today's arithmetic exactly
    assert all(
        torch.equal(value, reference["model"][name])
        for name, value in _weights(unfused.core).items()
    )
    for rows in (graph_rows, unfused_rows):
        for a, b in zip(eager_rows, rows):
            for key in (M.TRAIN_LOSS, M.MINIVAL_LOSS, M.MINIVAL_TOP1, M.LR):
                assert b[key] == pytest.approx(a[key], rel=1e-6), key


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
