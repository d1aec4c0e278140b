"""The cost model: what a model costs before it is trained.

- static.py: parameters, FLOPs (2 x MACs, torch's flop counter) and training activation
  memory, counted on the meta device (no weights allocated);
- latency.py: measured inference latency with a declared method (LatencyMethod);
- cache.py: a Parquet cache of latency results keyed by config, method, device, software;
- rounds.py, survey.py, budget.py: many architectures timed in interleaved rounds, the
  cache validated, the budget's decisions;
- onnx.py: ONNX export and ONNX Runtime sessions (the onnxruntime backend, rsearch export);
- table.py: latency tables measured on a deployment target, which searches read instead of
  measuring.

Nothing here imports Ray; it needs torch and (for the cache and tables) pyarrow only.
"""

from rsearch.cost.cache import LatencyCache, cache_key
from rsearch.cost.latency import LatencyMethod, check_device, device_name, measure_latency
from rsearch.cost.static import check_resolution, model_cost

__all__ = [
    "LatencyCache",
    "LatencyMethod",
    "cache_key",
    "check_device",
    "check_resolution",
    "device_name",
    "measure_latency",
    "model_cost",
]
