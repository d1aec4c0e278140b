"""The cost model (params, FLOPs, activation memory, latency, cache) and `rsearch cost`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from rsearch import cli
from rsearch.cost import (
    LatencyCache, LatencyMethod, cache_key, check_resolution, measure_latency, model_cost,
)
from rsearch.cost import cache as cache_mod
from rsearch.errors import UserError
from rsearch.models import TOTAL_STRIDE, build, model_config

TINY = model_config(depth=14, width=0.25, num_classes=4)


def timm_flops(depth: int, resolution: int) -> int:
    timm = pytest.importorskip("timm")
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = timm.create_model(f"resnetrs{depth}").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, resolution, resolution, device="meta"))
    return counter.get_total_flops()


# -- static cost -----------------------------------------------------------------------------

@pytest.mark.parametrize("depth,resolution,paper_gflops", [(50, 160, 4.6), (350, 256, 69.0)])
def test_flops_match_paper_and_timm(depth, resolution, paper_gflops):
    cost = model_cost(model_config(model=f"resnetrs-{depth}"), resolution)
    assert cost["flops"] / 1e9 == pytest.approx(paper_gflops, rel=0.02)
    assert cost["flops"] == timm_flops(depth, resolution)


def test_params_and_published_figures():
    cost = model_cost(model_config(model="resnetrs-50"), 160)
    assert cost["params"] == 35_691_912
    assert cost["activation_bytes"] > 0


def test_flops_scale_with_resolution_and_width():
    cfg = model_config(depth=50)
    a, b = model_cost(cfg, 128), model_cost(cfg, 256)
    assert b["flops"] / a["flops"] == pytest.approx(4, rel=0.01)  # conv FLOPs ~ pixels
    assert b["activation_bytes"] / a["activation_bytes"] == pytest.approx(4, rel=0.05)
    assert a["params"] == b["params"]
    wide = model_cost(model_config(depth=50, width=2.0), 128)
    assert 3.5 < wide["flops"] / a["flops"] < 4.2  # ~ width squared (stem and head scale less)


def test_activation_bytes_match_a_real_cpu_forward():
    """The meta-device count equals what autograd really keeps on CPU (distinct storages)."""
    model = build(TINY).train()
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    saved = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            saved[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(2, 3, 64, 64))
    assert model_cost(TINY, 64)["activation_bytes"] == sum(saved.values()) // 2


def test_largest_model_is_counted_in_seconds_without_weights():
    start = time.perf_counter()
    cost = model_cost(model_config(model="resnetrs-420"), 320)
    assert time.perf_counter() - start < 30
    assert cost["params"] == 191_891_656
    assert cost["flops"] / 1e9 == pytest.approx(127.9, rel=0.01)


def test_one_channel_and_any_resolution():
    grey = model_config(depth=14, width=0.25, num_classes=10, in_chans=1)
    assert model_cost(grey, 32)["flops"] < model_cost(TINY, 32)["flops"] * 1.1
    for resolution in (32, 33, 57):
        assert model_cost(TINY, resolution)["flops"] > 0


@pytest.mark.parametrize("value,expected", [(32, 32), ("64", 64), (1000, 1000)])
def test_check_resolution_accepts(value, expected):
    assert check_resolution(value) == expected


@pytest.mark.parametrize("value", [31, 0, -1, "abc", "", None, 3.5, True, "31"])
def test_check_resolution_rejects(value):
    assert TOTAL_STRIDE == 32
    with pytest.raises(UserError, match=r"^--resolution: .*32"):
        check_resolution(value)


# -- latency ---------------------------------------------------------------------------------

def test_latency_method_key_and_describe():
    a = LatencyMethod()
    assert a.key() == LatencyMethod().key()
    others = [LatencyMethod(batch_size=64), LatencyMethod(dtype="bfloat16"), LatencyMethod(threads=1),
              LatencyMethod(channels_last=True), LatencyMethod(compile=True), LatencyMethod(repeats=11)]
    assert len({a.key(), *(m.key() for m in others)}) == 1 + len(others)
    d = LatencyMethod(compile=True).describe()
    assert d["compile"] is True and d["compile_mode"] == "default" and d["device"] == "cpu"
    assert all(not isinstance(v, (dict, list)) for v in d.values())


@pytest.mark.parametrize("kwargs,flag", [
    ({"device": "tpu"}, "--device"), ({"dtype": "float16"}, "--dtype"), ({"batch_size": 0}, "--batch"),
    ({"repeats": 0}, "--repeats"), ({"warmup": -1}, "--warmup"), ({"threads": 0}, "--threads"),
    ({"cuda_graphs": True}, "--cuda-graphs"), ({"compile": True, "warmup": 2}, "--warmup"),
])
def test_latency_method_rejects(kwargs, flag):
    with pytest.raises(UserError, match=f"^{flag}: "):
        LatencyMethod(**kwargs)


def test_measure_latency_cpu():
    threads = torch.get_num_threads()
    method = LatencyMethod(batch_size=2, warmup=1, repeats=5, threads=1)
    result = measure_latency(TINY, 32, method)
    assert torch.get_num_threads() == threads  # restored
    assert 0 < result["latency_ms"] <= result["latency_p95_ms"]
    assert result["latency_min_ms"] <= result["latency_ms"]
    assert result["threads_used"] == 1 and result["batch_size"] == 2 and result["resolution"] == 32
    assert result["torch"] == torch.__version__ and result["device_name"]
    assert {k: result[k] for k in method.describe()} == method.describe()
    json.dumps(result)  # storable as is


def test_measure_latency_bf16_channels_last():
    result = measure_latency(TINY, 32, LatencyMethod(dtype="bfloat16", channels_last=True, warmup=1, repeats=2))
    assert result["latency_ms"] > 0 and result["dtype"] == "bfloat16" and result["channels_last"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_measure_latency_cuda_without_gpu_is_a_user_error():
    with pytest.raises(UserError, match="^--device: "):
        measure_latency(TINY, 32, LatencyMethod(device="cuda"))


# -- the cache -------------------------------------------------------------------------------

FAKE = {"latency_ms": 1.5, "latency_p95_ms": 2.0, "device_name": "x", "torch": "y"}


def test_cache_round_trip(tmp_path):
    path = tmp_path / "sub" / "latency.parquet"
    cache = LatencyCache(path)
    method = LatencyMethod(batch_size=4)
    assert cache and len(cache) == 0  # truthy even when empty
    assert cache.get(TINY, 64, method) is None
    cache.put(TINY, 64, method, FAKE)
    assert cache.get(TINY, 64, method) == FAKE
    assert LatencyCache(path).get(TINY, 64, method) == FAKE  # read back from disk
    assert LatencyCache(path).get(TINY, 65, method) is None
    assert LatencyCache(path).get(model_config(depth=14, width=0.5, num_classes=4), 64, method) is None
    assert LatencyCache(path).get(TINY, 64, LatencyMethod(batch_size=8)) is None
    cache.put(TINY, 64, method, {**FAKE, "latency_ms": 3.0})  # overwrite, no duplicate row
    assert len(LatencyCache(path)) == 1 and LatencyCache(path).get(TINY, 64, method)["latency_ms"] == 3.0
    assert sorted(os.listdir(path.parent)) == ["latency.parquet", "latency.parquet.lock"]  # no temporaries


def test_cache_keys_differ_by_method_device_and_software(monkeypatch):
    base = cache_key(TINY, 64, LatencyMethod())
    assert base == cache_key(TINY, 64, LatencyMethod())
    assert base["key"] != cache_key(TINY, 64, LatencyMethod(dtype="bfloat16"))["key"]
    assert base["key"] != cache_key(TINY, 64, LatencyMethod(threads=1 if torch.get_num_threads() != 1 else 2))["key"]
    assert base["key"] != cache_key(model_config(depth=14, width=0.25, num_classes=5), 64, LatencyMethod())["key"]
    assert base["key"] != cache_key(model_config(depth=14, width=0.25, num_classes=4, in_chans=1), 64,
                                    LatencyMethod())["key"]
    monkeypatch.setattr(cache_mod, "device_name", lambda device: "Other CPU")
    assert base["key"] != cache_key(TINY, 64, LatencyMethod())["key"]
    monkeypatch.undo()
    monkeypatch.setattr(cache_mod.torch, "__version__", "0.0.1")
    assert base["key"] != cache_key(TINY, 64, LatencyMethod())["key"]


def test_cache_get_or_measure_measures_once(tmp_path, monkeypatch):
    calls = []

    def fake_measure(cfg, resolution, method):
        calls.append(method.batch_size)
        return {**FAKE, "batch_size": method.batch_size}

    monkeypatch.setattr(cache_mod, "measure_latency", fake_measure)
    cache = LatencyCache(tmp_path / "c.parquet")
    first = cache.get_or_measure(TINY, 64, LatencyMethod(batch_size=2))
    again = LatencyCache(tmp_path / "c.parquet").get_or_measure(TINY, 64, LatencyMethod(batch_size=2))
    assert calls == [2] and first["cached"] is False and again["cached"] is True
    assert again["latency_ms"] == first["latency_ms"]


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.parquet"
    cache = LatencyCache(path)
    cache.put(TINY, 64, LatencyMethod(), FAKE)
    before = path.read_bytes()

    def broken_write(table, where, **kw):
        with open(where, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk full")

    import pyarrow.parquet as pq

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        cache.put(TINY, 64, LatencyMethod(batch_size=9), FAKE)
    assert path.read_bytes() == before  # the old table is intact
    assert sorted(os.listdir(tmp_path)) == ["c.parquet", "c.parquet.lock"]  # no temporary left behind
    assert LatencyCache(path).get(TINY, 64, LatencyMethod()) == FAKE


@pytest.mark.parametrize("content", [b"not parquet at all", None])
def test_cache_that_is_not_a_cache_is_a_user_error(tmp_path, content):
    path = tmp_path / "c.parquet"
    if content is None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"a": [1]}), path)
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(UserError, match="^--cache: "):
        LatencyCache(path).get(TINY, 64, LatencyMethod())
    with pytest.raises(UserError, match="^--cache: "):
        LatencyCache(path).put(TINY, 64, LatencyMethod(), FAKE)
    assert path.read_bytes() == before  # never overwritten


def test_cache_concurrent_writers_keep_every_row(tmp_path):
    path = tmp_path / "c.parquet"

    def writer(i):
        cache = LatencyCache(path)
        for j in range(3):
            cache.put(TINY, 32 + i, LatencyMethod(batch_size=1 + j), {**FAKE, "latency_ms": float(i)})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(LatencyCache(path)) == 12


# -- the command -----------------------------------------------------------------------------

def run_cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_help(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "cost" in out
    code, out, _ = run_cli(["cost", "--help"], capsys)
    assert code == 0 and "--latency" in out and "--resolution" in out


def test_cost_json(capsys):
    code, out, err = run_cli(["cost", "--model", "resnetrs-350", "--resolution", "256", "--classes", "1000",
                              "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["params"] == 163_956_168 and report["flops"] / 1e9 == pytest.approx(69, rel=0.02)
    assert report["model"] == "resnetrs-350" and report["depth"] == 350 and report["layers"] == [4, 36, 72, 4]
    assert report["width"] == 1.0 and report["resolution"] == 256 and "latency" not in report


def test_cost_timm_spelling_and_default_resolution(capsys):
    code, out, _ = run_cli(["cost", "--model", "resnetrs50", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["resolution"] == 160 and report["params"] == 35_691_912


def test_cost_latency_json(tmp_path, capsys):
    argv = ["cost", "--depth", "26", "--width", "0.25", "--resolution", "32", "--classes", "10", "--in-chans", "1",
            "--latency", "--batch", "1,3", "--repeats", "2", "--warmup", "1", "--threads", "1",
            "--cache", str(tmp_path / "lat.parquet"), "--json"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["layers"] == [2, 2, 2, 2] and report["in_chans"] == 1 and report["width"] == 0.25
    assert [r["batch_size"] for r in report["latency"]] == [1, 3]
    for r in report["latency"]:
        assert r["latency_ms"] > 0 and r["device"] == "cpu" and r["repeats"] == 2 and r["cached"] is False
    code, out, _ = run_cli(argv, capsys)
    assert all(r["cached"] for r in json.loads(out)["latency"])


def test_cost_table(tmp_path, capsys):
    code, out, _ = run_cli(["cost", "--depth", "14", "--width", "0.25", "--resolution", "32", "--latency",
                            "--repeats", "1", "--warmup", "0", "--no-cache"], capsys)
    assert code == 0
    for word in ("params", "FLOPs", "layers", "latency", "latency ms", "IQR ms"):
        assert word in out
    assert not out.lstrip().startswith("{")


BAD = [
    (["--model", "resnext-50"], "--model"),
    (["--model", "resnetrs-10"], "--model"),
    (["--depth", "13"], "--depth"),
    (["--depth", "abc"], "--depth"),
    (["--depth", "50", "--width", "0"], "--width"),
    (["--depth", "50", "--width", "-1"], "--width"),
    (["--depth", "50", "--width", "wide"], "--width"),
    (["--model", "resnetrs-50", "--resolution", "31"], "--resolution"),
    (["--model", "resnetrs-50", "--resolution", "abc"], "--resolution"),
    (["--model", "resnetrs-50", "--resolution", "64.5"], "--resolution"),
    (["--model", "resnetrs-50", "--latency", "--batch", ""], "--batch"),
    (["--model", "resnetrs-50", "--latency", "--batch", "1,x"], "--batch"),
    (["--model", "resnetrs-50", "--latency", "--batch", "0"], "--batch"),
    (["--model", "resnetrs-50", "--classes", "1"], "--classes"),
    (["--model", "resnetrs-50", "--in-chans", "2"], "--in-chans"),
    (["--model", "resnetrs-50", "--latency", "--repeats", "0"], "--repeats"),
    (["--model", "resnetrs-50", "--latency", "--threads", "x"], "--threads"),
    (["--width", "1.0"], "--depth"),
]
if not torch.cuda.is_available():
    BAD.append((["--model", "resnetrs-50", "--latency", "--device", "cuda"], "--device"))


@pytest.mark.parametrize("argv,flag", BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_cost_bad_input_exits_2_with_one_line(argv, flag, capsys):
    code, out, err = run_cli(["cost", *argv], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in err, err


def test_command_literals_match_the_model():
    from rsearch.commands import cost as command
    from rsearch.models.registry import MIN_DEPTH

    assert command.MIN_RESOLUTION == TOTAL_STRIDE and command.MIN_DEPTH == MIN_DEPTH


def test_cost_and_models_import_neither_ray_nor_pyarrow():
    """They run on a bare GPU box (torch only); pyarrow is loaded when the cache is used."""
    code = ("import sys, rsearch.cost, rsearch.models, rsearch.commands.cost; "
            "sys.exit(1 if {'ray', 'pyarrow'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
