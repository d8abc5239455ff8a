"""OpenVINO on the CPU: a transformers encoder converted once to a graph, compiled per precision.

``exact`` compiles in fp32 (``INFERENCE_PRECISION_HINT=f32``: scores agree with torch to
about 1e-5, with fused kernels faster than torch eager), ``fast`` in bf16 (fused attention and
bf16 matmuls where the CPU has AVX512-BF16 or AMX; elsewhere it compiles f32, because OpenVINO
2026 given a bf16 hint on such a CPU emulates bf16 at ~1/35 of f32's speed), ``int8`` with
the encoder's Linear weights int8 per output channel (NNCF weight compression, data-free) and
their inputs quantised per token at run time in groups of 128 (dynamic quantisation).
The converted graphs are cached per model identity and OpenVINO version, with the sha256 of
their files: a graph folder that is damaged (a file cut short, missing or overwritten) or that
OpenVINO cannot read is moved aside and converted again.

Usage::

    request = compile_request(model, tokenizer, identity, mode="fast")
    logits = request.infer({"input_ids": ids, "attention_mask": mask})[0]
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from ..core.files import atomic_dir, checksum_problem, quarantine, stable_hash, write_checksums
from .stores import cache_dir

MODES = ("exact", "fast", "int8")
# int8: 128 activations share one scale. Chosen on held-out SciFact *train* queries as the fastest
# group size whose nDCG@10 stayed within 0.002 of exact (64: 7% slower; 256: slower and coarser).
INT8_ACTIVATION_GROUP = 128
# Embeddings, pooler and classifier stay float: they cost no matmul time worth saving.
INT8_FLOAT_LAYERS = (r".*embeddings.*", r".*pooler.*", r".*classifier.*")
_COMPILED: dict[tuple, object] = {}


def available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def supports(capability: str) -> bool:
    """Whether this CPU has OpenVINO kernels for ``capability`` (``"BF16"``, ``"INT8"``...)."""
    import openvino as ov

    return capability in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def effective_mode(mode: str) -> str:
    """The precision OpenVINO really runs ``mode`` in here: without bf16 kernels (no AVX512-BF16
    or AMX) ``fast`` compiles fp32 (a bf16 hint there is emulated, far slower), so it computes exactly
    what ``exact`` does."""
    if mode == "fast" and available() and not supports("BF16"):
        return "exact"
    return mode


def resolve_backend(backend: str, device: str = "cpu") -> str:
    """``"auto"``: OpenVINO when it is installed (faster on the CPU in every mode), else torch. Off the
    CPU only torch runs (``device`` is the resolved one, e.g. ``"cuda:0"``)."""
    if backend not in ("auto", "openvino", "torch"):
        raise ValueError(f"unknown backend {backend!r}: use 'auto', 'openvino' or 'torch'")
    if device.split(":")[0] != "cpu":
        if backend == "openvino":
            raise ValueError(f"backend='openvino' runs on the CPU only; on {device!r} use backend='torch'")
        return "torch"
    if backend != "auto":
        return backend
    return "openvino" if available() else "torch"


def graph_folder(identity: str, input_names: list[str]) -> Path:
    import openvino as ov

    return cache_dir("openvino") / stable_hash(identity, ov.__version__, input_names, "checksummed", length=24)


def _trusted(folder: Path) -> bool:
    """Whether the graph in ``folder`` is whole; a damaged one is moved aside (and so rebuilt)."""
    if not folder.exists():
        return False
    problem = checksum_problem(folder)
    if problem is None:
        return True
    quarantine(folder, f"converted OpenVINO graph: {problem}")
    return False


def convert(model, tokenizer, identity: str) -> Path:
    """The fp32 graph of ``model`` (converted once per identity and OpenVINO version)."""
    import openvino as ov
    import torch

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    folder = graph_folder(identity, names)
    if not _trusted(folder):
        example = tokenizer(["a query"] * 2, ["a document text"] * 2, padding=True, return_tensors="pt")
        example = {n: example[n] for n in names}
        # torch.jit tracing warns (TracerWarning) about Python control flow in transformers' masks, and
        # walking the module's attributes trips transformers' "loss_type=None" notice: expected for this
        # conversion, and of no use to a user.
        import transformers

        level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                converted = ov.convert_model(model, example_input=example,
                                             input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names])
        finally:
            transformers.logging.set_verbosity(level)
        with atomic_dir(folder) as staging:
            ov.save_model(converted, staging / "model.xml", compress_to_fp16=False)
            write_checksums(staging)
    return folder / "model.xml"


def int8_weight_graph(folder: Path) -> Path:
    """``folder/w8/model.xml``: the graph with its encoder Linear weights int8, one scale and
    zero point per output channel (NNCF, data-free), except :data:`INT8_FLOAT_LAYERS`."""
    import openvino as ov

    target = folder / "w8"
    if _trusted(target):
        return target / "model.xml"
    try:
        import nncf
    except ImportError as exc:
        raise ImportError("mode='int8' compresses weights through NNCF: `pip install 'rerank-lab[openvino]'`, "
                          "or pass backend='torch' for torch dynamic int8") from exc
    keep_float = nncf.IgnoredScope(patterns=list(INT8_FLOAT_LAYERS), validate=False)
    compressed = nncf.compress_weights(ov.Core().read_model(folder / "model.xml"),
                                       mode=nncf.CompressWeightsMode.INT8_ASYM, ignored_scope=keep_float)
    with atomic_dir(target) as staging:
        ov.save_model(compressed, staging / "model.xml", compress_to_fp16=False)
        write_checksums(staging)
    return target / "model.xml"


class StreamedRequest:
    """One compiled model run as ``streams`` parallel streams: :meth:`infer` splits a batch's rows
    among them and joins the outputs, so callers keep the one-request call shape. On 2 CPU cores two
    single-thread streams encoded 2-14% faster than one two-thread request, with identical outputs
    (less synchronisation inside each layer; four interleaved runs over 512 SciFact documents on the
    2-core AMD EPYC; compare here with ``benchmarks/dense_encode.py --streams 1``). Outputs are arrays
    the caller owns."""

    def __init__(self, compiled, streams: int):
        self.requests = [compiled.create_infer_request() for _ in range(max(streams, 1))]

    def infer(self, inputs: dict) -> list:
        rows = len(next(iter(inputs.values())))
        parts = min(len(self.requests), rows)
        if parts <= 1:
            request = self.requests[0]
            request.infer(inputs)
            return [request.get_output_tensor(i).data.copy() for i in range(len(request.model_outputs))]
        bounds = [round(i * rows / parts) for i in range(parts + 1)]
        used = self.requests[:parts]
        for request, lo, hi in zip(used, bounds, bounds[1:]):
            request.start_async({k: v[lo:hi] for k, v in inputs.items()})
        for request in used:
            request.wait()
        count = len(used[0].model_outputs)
        return [np.concatenate([r.get_output_tensor(i).data for r in used]) for i in range(count)]

    @property
    def profiling_info(self):
        return self.requests[0].profiling_info

    def get_compiled_model(self):
        return self.requests[0].get_compiled_model()


def default_streams() -> int:
    """Parallel streams for whole-batch inference: two where this process may use two cores (its CPU
    affinity, and ``OMP_NUM_THREADS``, which Ray sets to a worker's CPU share)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    return 2 if cores >= 2 else 1


def compile_request(model, tokenizer, identity: str, mode: str = "fast", threads: int | None = None,
                    profile: bool = False):
    """An OpenVINO infer request running ``model`` on the CPU in ``mode`` (one per process and
    settings). ``threads``: inference threads (default: all cores). ``profile``: per-node
    timings in ``profiling_info``."""
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        raise ImportError("backend='openvino' needs OpenVINO: `pip install 'rerank-lab[openvino]'`, or pass "
                          "backend='torch'") from exc
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    # Without bf16 kernels a bf16 hint is emulated, 35x slower than f32 (0.8 vs 28 pairs/s for the
    # lab cross-encoder on a 2-core Ice Lake Xeon, benchmarks/cross_encoder_throughput.py): compile f32.
    mode = effective_mode(mode)
    # a worker given a thread budget, or a profile, runs one stream (per-node timings of one request)
    streams = 1 if (threads or profile) else default_streams()
    key = (identity, mode, threads, profile, streams)
    if key not in _COMPILED:
        config = {"INFERENCE_PRECISION_HINT": "f32" if mode == "exact" else "bf16",
                  "PERF_COUNT": "YES" if profile else "NO"}
        if streams > 1:
            config.update({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": str(streams)})
        else:
            config["PERFORMANCE_HINT"] = "LATENCY"
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        if mode == "int8":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(INT8_ACTIVATION_GROUP)
        _COMPILED[key] = StreamedRequest(_compiled(model, tokenizer, identity, mode, config), streams)
    return _COMPILED[key]


def _compiled(model, tokenizer, identity: str, mode: str, config: dict):
    """The graph for ``mode`` compiled for the CPU; a cached graph OpenVINO cannot read (its
    checksums intact, its content not a model) is moved aside and converted once more."""
    import openvino as ov

    core = ov.Core()
    for attempt in (1, 2):
        graph = convert(model, tokenizer, identity)
        if mode == "int8":
            graph = int8_weight_graph(graph.parent)
        try:
            return core.compile_model(core.read_model(graph), "CPU", config)
        except RuntimeError as exc:
            if attempt == 2:
                raise
            quarantine(graph.parent, f"OpenVINO cannot read the converted graph: {str(exc).splitlines()[0]}")
