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
from conftest import run_cli

from rsearch.bounds import FieldError
from rsearch.cost import (
    LatencyCache,
    LatencyMethod,
    cache_key,
    check_resolution,
    measure_latency,
    model_cost,
)
from rsearch.cost import cache as cache_mod
from rsearch.errors import UserError
from rsearch.models import TOTAL_STRIDE, build, model_config

TINY = model_config(depth=14, width=0.25, num_classes=4)
# `rsearch cost` arguments measuring the smallest model's latency once, quickly.
TINY_LATENCY = "--depth 14 --width 0.25 --resolution 32 --latency --repeats 1 --warmup 0".split()


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
    with pytest.raises(FieldError, match=r"^resolution: expected an integer in \[32, 1024\]"):
        check_resolution(value)


# -- latency ---------------------------------------------------------------------------------


def test_latency_method_key_and_describe():
    a = LatencyMethod()
    assert a.key() == LatencyMethod().key()
    others = [
        LatencyMethod(batch_size=64),
        LatencyMethod(dtype="bfloat16"),
        LatencyMethod(threads=1),
        LatencyMethod(channels_last=True),
        LatencyMethod(compile=True),
        LatencyMethod(repeats=11),
    ]
    assert len({a.key(), *(m.key() for m in others)}) == 1 + len(others)
    d = LatencyMethod(compile=True).describe()
    assert d["compile"] is True and d["compile_mode"] == "default" and d["device"] == "cpu"
    assert all(not isinstance(v, (dict, list)) for v in d.values())


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"device": "tpu"}, "device"),
        ({"dtype": "float16"}, "dtype"),
        ({"batch_size": 0}, "batch_size"),
        ({"repeats": 0}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"threads": 0}, "threads"),
        ({"min_run_time": 0}, "min_run_time"),
        ({"cuda_graphs": True}, "cuda_graphs"),
        ({"compile": True, "warmup": 2}, "warmup"),
    ],
)
def test_latency_method_rejects_naming_the_field(kwargs, field):
    with pytest.raises(FieldError, match=f"^{field}: expected ") as caught:
        LatencyMethod(**kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "flags,message",
    [
        (
            ["--compile", "--warmup", "2"],
            "--warmup: expected at least 3 with compile or cuda_graphs",
        ),
        (["--cuda-graphs", "--warmup", "3"], "--cuda-graphs: expected false with device cpu"),
    ],
)
def test_cost_names_the_flag_of_a_latency_rule(flags, message, capsys):
    argv = ["cost", "--depth", "14", "--width", "0.25", "--resolution", "32", "--latency"]
    code, out, err = run_cli([*argv, *flags], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert message in err


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
    result = measure_latency(
        TINY, 32, LatencyMethod(dtype="bfloat16", channels_last=True, warmup=1, repeats=2)
    )
    assert result["latency_ms"] > 0 and result["dtype"] == "bfloat16" and result["channels_last"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_measure_latency_cuda_without_gpu_names_the_device_field():
    with pytest.raises(FieldError, match="^device: expected cpu"):
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
    assert (
        LatencyCache(path).get(model_config(depth=14, width=0.5, num_classes=4), 64, method) is None
    )
    assert LatencyCache(path).get(TINY, 64, LatencyMethod(batch_size=8)) is None
    cache.put(TINY, 64, method, {**FAKE, "latency_ms": 3.0})  # overwrite, no duplicate row
    assert (
        len(LatencyCache(path)) == 1
        and LatencyCache(path).get(TINY, 64, method)["latency_ms"] == 3.0
    )
    assert sorted(os.listdir(path.parent)) == [
        "latency.parquet",
        "latency.parquet.lock",
    ]  # no temporaries


def test_cache_keys_differ_by_method_device_and_software(monkeypatch):
    base = cache_key(TINY, 64, LatencyMethod())
    assert base == cache_key(TINY, 64, LatencyMethod())
    assert base["key"] != cache_key(TINY, 64, LatencyMethod(dtype="bfloat16"))["key"]
    assert (
        base["key"]
        != cache_key(TINY, 64, LatencyMethod(threads=1 if torch.get_num_threads() != 1 else 2))[
            "key"
        ]
    )
    assert (
        base["key"]
        != cache_key(model_config(depth=14, width=0.25, num_classes=5), 64, LatencyMethod())["key"]
    )
    assert (
        base["key"]
        != cache_key(
            model_config(depth=14, width=0.25, num_classes=4, in_chans=1), 64, LatencyMethod()
        )["key"]
    )
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
    again = LatencyCache(tmp_path / "c.parquet").get_or_measure(
        TINY, 64, LatencyMethod(batch_size=2)
    )
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
    assert sorted(os.listdir(tmp_path)) == [
        "c.parquet",
        "c.parquet.lock",
    ]  # no temporary left behind
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
            cache.put(
                TINY, 32 + i, LatencyMethod(batch_size=1 + j), {**FAKE, "latency_ms": float(i)}
            )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(LatencyCache(path)) == 12


# -- the command -----------------------------------------------------------------------------


def test_help(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "cost" in out
    code, out, _ = run_cli(["cost", "--help"], capsys)
    assert code == 0 and "--latency" in out and "--resolution" in out


def test_cost_json(capsys):
    code, out, err = run_cli(
        ["cost", "--model", "resnetrs-350", "--resolution", "256", "--classes", "1000", "--json"],
        capsys,
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["params"] == 163_956_168 and report["flops"] / 1e9 == pytest.approx(69, rel=0.02)
    assert (
        report["model"] == "resnetrs-350"
        and report["depth"] == 350
        and report["layers"] == [4, 36, 72, 4]
    )
    assert report["width"] == 1.0 and report["resolution"] == 256 and "latency" not in report


def test_cost_timm_spelling_and_default_resolution(capsys):
    code, out, _ = run_cli(["cost", "--model", "resnetrs50", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["resolution"] == 160 and report["params"] == 35_691_912


def test_cost_latency_json(tmp_path, capsys):
    argv = [
        "cost",
        "--depth",
        "26",
        "--width",
        "0.25",
        "--resolution",
        "32",
        "--classes",
        "10",
        "--in-chans",
        "1",
        "--latency",
        "--batch",
        "1,3",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--cache",
        str(tmp_path / "lat.parquet"),
        "--json",
    ]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["layers"] == [2, 2, 2, 2] and report["in_chans"] == 1 and report["width"] == 0.25
    assert [r["batch_size"] for r in report["latency"]] == [1, 3]
    for r in report["latency"]:
        assert (
            r["latency_ms"] > 0
            and r["device"] == "cpu"
            and r["repeats"] == 2
            and r["cached"] is False
        )
    code, out, _ = run_cli(argv, capsys)
    assert all(r["cached"] for r in json.loads(out)["latency"])


def test_cost_table(tmp_path, capsys):
    code, out, _ = run_cli(
        ["cost", *TINY_LATENCY, "--no-cache"],
        capsys,
    )
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


@pytest.mark.parametrize(
    "argv,message",
    [
        (  # argparse's type, from the rule table
            ["--depth", "13"],
            "--depth: expected an integer in [14, 1000] (one bottleneck per stage), got '13'",
        ),
        (["--model", "resnetrs-50", "--classes", "1"], "--classes: expected an integer in [2, "),
        (  # a FieldError of the model registry, named by the command
            ["--model", "resnetrs-7"],
            "--model: expected a model whose depth is an integer in [14, 1000]",
        ),
        (["--model", "vgg16"], "--model: expected one of resnetrs-50, resnetrs-101, "),
    ],
)
def test_cost_errors_name_the_flag_in_the_one_wording(argv, message, capsys):
    code, _, err = run_cli(["cost", *argv], capsys)
    assert code == 2 and err.startswith(f"rsearch cost: error: {message}"), err


def test_the_flags_take_the_fields_rules():
    """--depth and --resolution accept what the model does (rsearch.bounds, read without torch)."""
    from rsearch.bounds import MIN_DEPTH, MIN_RESOLUTION
    from rsearch.models import layers_for_depth

    assert MIN_RESOLUTION == TOTAL_STRIDE
    layers_for_depth(MIN_DEPTH)
    with pytest.raises(FieldError):
        layers_for_depth(MIN_DEPTH - 1)


def test_cost_and_models_import_neither_ray_nor_pyarrow():
    """They run on a bare GPU box (torch only); pyarrow is loaded when the cache is used."""
    code = (
        "import sys, rsearch.cost, rsearch.models, rsearch.commands.cost; "
        "sys.exit(1 if {'ray', 'pyarrow'} & set(sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


# -- memory: estimated before allocating, refused with one line -----------------------------

# The peak RSS of this process image: /proc's VmHWM (getrusage's ru_maxrss survives exec, so a
# child forked from pytest would report pytest's own size).
_PEAK_RSS = """
def peak_rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
"""

# What a capped `rsearch` reports: its exit code, stderr, and peak RSS.
_CAPPED = (
    _PEAK_RSS
    + """
import resource, sys
cap = int(float(sys.argv[1]) * 2**30)
# a regression fails fast here, not in the OOM killer
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from rsearch.cli import main
code = main(sys.argv[2:])
print("maxrss", peak_rss(), file=sys.stderr)
sys.exit(code)
"""
)


def capped_rsearch(argv, tmp_path, cap_gib=6.0):
    """`rsearch argv` in a fresh process whose address space is capped (torch needs ~3.5 GiB
    of it)."""
    env = dict(os.environ, HOME=str(tmp_path), RSEARCH_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-c", _CAPPED, str(cap_gib), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    rss = int(lines[-1].split()[1]) if lines and lines[-1].startswith("maxrss") else None
    return done.returncode, lines[:-1] if rss is not None else lines, rss


_MEASURE = (
    _PEAK_RSS
    + """
import copy, os, sys
import torch
from rsearch import memory
from rsearch.models import build, model_config

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

kind, batch = sys.argv[1], int(sys.argv[5])
depth, width, resolution = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
cfg = model_config(depth=depth, width=width, num_classes=10)
# the runtime's own first-use allocations
warm = build(model_config(depth=14, width=0.25, num_classes=10))
warm(torch.randn(2, 3, 32, 32)).sum().backward()
del warm
estimate_of = memory.training_estimate if kind == "train" else memory.inference_estimate
estimate = estimate_of(cfg, resolution, batch)
before = rss()
model = build(cfg)
x = torch.randn(batch, 3, resolution, resolution)
# as the trainer: SGD momentum and an EMA copy; the second step is the steady state
if kind == "train":
    ema = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        del loss
else:
    with torch.inference_mode():
        model.eval()(x)
print(estimate.total, peak_rss() - before)
"""
)


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


@linux_only
@pytest.mark.parametrize(
    "kind, model", [("train", ["26", "0.5", "128", "8"]), ("infer", ["26", "0.5", "256", "8"])]
)
def test_memory_estimate_is_close_to_a_measured_peak(kind, model):
    """The meta-device estimate against the peak RSS of the real CPU run. A fixed mmap threshold
    makes glibc return every freed tensor at once, so RSS follows the bytes alive."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, kind, *model],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    estimate, measured = (int(v) for v in done.stdout.split())
    assert measured > 50 * 2**20  # the run itself, not noise
    assert measured / 2 <= estimate <= measured * 1.1, (estimate, measured)  # errs low, within 2x


@linux_only
def test_latency_that_cannot_fit_is_refused_before_allocating(tmp_path):
    code, err, rss = capped_rsearch(
        [
            "cost",
            "--model",
            "resnetrs-50",
            "--resolution",
            "1000",
            "--latency",
            "--batch",
            "1,64",
            "--no-cache",
        ],
        tmp_path,
    )
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        "rsearch cost: error: --batch: measuring the latency of resnetrs-50 at 1000 px "
        "in batches of 64 needs about 14.2 GiB of memory"
    ), err
    assert "available on this machine; expected a batch of at most" in err[0]
    assert rss < 1.5 * 2**30  # torch and the meta-device count; no weights, no batch
    code, err, _ = capped_rsearch(
        "cost --depth 26 --width 0.25 --resolution 64 --latency --batch 1,8 --repeats 1 "
        "--warmup 0 --no-cache".split(),
        tmp_path,
    )
    assert code == 0, err  # a tiny model passes under the same cap


def test_a_cached_latency_needs_no_memory(tmp_path, capsys, monkeypatch):
    from rsearch import memory

    argv = [
        "cost",
        *TINY_LATENCY,
        "--json",
        "--batch",
        "4",
        "--cache",
        str(tmp_path / "lat.parquet"),
    ]
    assert run_cli(argv, capsys)[0] == 0
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 2**20)
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and json.loads(out)["latency"][0]["cached"]
    code, _, err = run_cli([*argv[:-4], "--batch", "5", "--no-cache"], capsys)
    assert (
        code == 2
        and "--batch: measuring the latency of resnetrs-14-w0.25 at 32 px in batches of 5" in err
    )
    assert (
        "more than the 1.0 MiB available on this machine; expected a lower --resolution or a "
        "smaller model" in err
    )


def refused_early(capped: tuple, message_start: str) -> None:
    """A capped run refused with one line, before torch allocated anything large."""
    code, err, rss = capped
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(message_start), err
    assert rss < 1.5 * 2**30


@linux_only
def test_a_training_run_that_cannot_fit_is_refused_before_anything_is_written(tmp_path):
    small = ["train", "--depth", "26", "--width", "0.25", "--output", str(tmp_path / "run")]
    refused_early(
        capped_rsearch([*small, "--resolution", "1024", "--batch-size", "4096"], tmp_path),
        "rsearch train: error: --batch-size: training depth 26 width 0.25 at 1024 px in "
        "batches of 4096 needs about 1.5 TiB of memory (382.0 MiB per image x 4096",
    )
    # The synthetic split is rendered in memory before it is cached: 5,000 images at 1171 px do not
    # fit.
    refused_early(
        capped_rsearch([*small, "--resolution", "1024", "--batch-size", "1"], tmp_path),
        "rsearch train: error: data.train_size (--train-size): rendering the synthetic "
        "train split (5,000 images of 1171 x 1171 px) needs about 19.4 GiB",
    )
    assert not (tmp_path / "run").exists() and not list((tmp_path / "cache").glob("synthetic/*px*"))
    code, err, _ = capped_rsearch(
        [
            *small,
            "--resolution",
            "32",
            "--batch-size",
            "32",
            "--train-size",
            "200",
            "--epochs",
            "1",
        ],
        tmp_path,
    )
    assert code == 0, err  # a tiny run trains under the same cap


def test_check_fits_names_the_need_what_is_free_and_the_largest_batch(monkeypatch):
    from rsearch import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 100 * 2**20)
    estimate = memory.Estimate(
        fixed=10 * 2**20, per_image=2**20, batch_size=256, fixed_is="weights"
    )
    memory.check_fits(
        memory.Estimate(fixed=10 * 2**20, per_image=2**20, batch_size=90),
        "cpu",
        doing="x",
        batch_flag="--batch",
    )
    with pytest.raises(UserError) as info:
        memory.check_fits(
            estimate, "cpu", doing="training x", batch_flag="--batch-size", processes=2
        )
    assert str(info.value) == (
        "--batch-size: training x needs about 532.0 MiB of memory (1.0 MiB per image x 256 "
        "+ 10.0 MiB of weights in each of 2 processes), more than the 100.0 MiB available "
        "on this machine; expected a batch of at most 80 at this resolution, or a lower "
        "--resolution"
    )
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": None)
    memory.check_fits(estimate, "cpu", doing="x", batch_flag="--batch")  # unknown: not refused


def test_available_memory_is_bounded_by_the_cgroup_limit(tmp_path, monkeypatch):
    from rsearch import memory

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("1073741824\n")
    (v2 / "memory.current").write_text(str(900 * 2**20))
    (v2 / "memory.stat").write_text(f"anon 1\ninactive_file {100 * 2**20}\nactive_file 5\n")
    monkeypatch.setattr(
        memory, "_CGROUPS", ((str(v2 / "memory.max"), str(v2 / "memory.current"), "inactive_file"),)
    )
    assert (
        memory._cgroup_available() == (1024 - 900 + 100) * 2**20
    )  # inactive file cache is reclaimable
    assert memory.available_bytes("cpu") <= 224 * 2**20
    (v2 / "memory.max").write_text("max\n")
    assert memory._cgroup_available() is None
    assert memory.available_bytes("cpu") > 0
