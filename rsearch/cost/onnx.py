"""A network as ONNX, and ONNX Runtime sessions on the CPU: what `rsearch export --format onnx`
writes and checks, and what the `onnxruntime` latency backend times.

ONNX Runtime is an optional extra (rsearch[onnx]): it is imported only where it is used, and a
missing one is a one-line error with the pip command.
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import torch

from rsearch.errors import UserError

INSTALL = "pip install 'rsearch[onnx]'"
INPUT, OUTPUT = "images", "logits"


def require_onnxruntime(where: str):
    """The onnxruntime module, or a UserError naming `where` (a flag or a key) and the install."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"{where}: needs ONNX Runtime, an optional extra: {INSTALL}") from None
    return onnxruntime


def onnxruntime_installed() -> bool:
    """Whether ONNX Runtime can be imported, without importing it (a space is checked early)."""
    return importlib.util.find_spec("onnxruntime") is not None


def to_onnx(model: torch.nn.Module, example: torch.Tensor, target=None) -> bytes | None:
    """Export `model` (in eval mode) with a dynamic batch to `target` (a path), or return the
    ONNX bytes when no target is given."""
    buffer = io.BytesIO() if target is None else None
    with warnings.catch_warnings():
        # The TorchScript-based exporter (no onnxscript needed) warns that torch.export's is the
        # default now; it is what the torch releases rsearch supports (<= 2.14) all have.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            buffer if target is None else str(target),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            dynamo=False,
        )
    return None if buffer is None else buffer.getvalue()


def cpu_session(model, threads: int | None = None, where: str = "backend"):
    """An ONNX Runtime session on the CPU execution provider for `model` (a path or ONNX bytes).

    With `threads`, the intra-op pool has that many threads and operators run one after another
    (no inter-op parallelism), so a figure depends on the thread count alone; with one thread
    ONNX Runtime computes on the calling thread, which a thread-CPU clock then sees whole."""
    ort = require_onnxruntime(where)
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def onnxruntime_version() -> str | None:
    if not onnxruntime_installed():
        return None
    import onnxruntime

    return onnxruntime.__version__
