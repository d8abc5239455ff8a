"""Where the cross-encoder's time goes, per OpenVINO kernel type, in fp32 and bf16.

Runs one batch of full-length pairs (default 32 x 256 tokens, the throughput benchmark's
shape) through the lab cross-encoder's OpenVINO graph with per-node profiling, sums the time
per (node type, kernel), and turns the FullyConnected (Linear) time into achieved GFLOP/s from
the model's shape. It answers how far ``fast`` (bf16) can get over fp32 on the CPU at hand:
with AVX512-BF16 alone (``vdpbf16ps`` does twice the work of an fp32 FMA) bf16 Linear layers
top out near 2x the fp32 ones, so the whole model stays under 3x sentence-transformers; with
AMX tiles (Sapphire Rapids and later; the first line names the kernels) they run several
times faster. It prints the CPU's bf16 instruction sets first. The last line is::

    fc_bf16_over_f32=<x> fc_gflops_f32=<x> fc_gflops_bf16=<x> bf16_over_f32=<x>

Usage::

    python benchmarks/cross_encoder_kernel_profile.py [--batch 32] [--length 256] [--repeats 3]
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time


def linear_flops(config, tokens: int) -> float:
    """FLOPs of the encoder's Linear layers for ``tokens`` tokens (2 per multiply-add)."""
    hidden, inner = config.hidden_size, config.intermediate_size
    return 2.0 * tokens * config.num_hidden_layers * (4 * hidden * hidden + 2 * hidden * inner)


def bf16_instruction_sets() -> str:
    """The CPU's bf16/AMX flags from /proc/cpuinfo (Linux), e.g. ``avx512_bf16 amx_bf16``."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    return " ".join(f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")) or "none"


def profile(request, feed: dict, repeats: int) -> tuple[float, collections.Counter]:
    """Best wall time of ``repeats`` runs and the per-(node type, kernel) seconds of that run."""
    request.infer(feed)  # plan kernels for this shape
    best, per_kernel = float("inf"), collections.Counter()
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer(feed)
        wall = time.perf_counter() - start
        if wall < best:
            best, per_kernel = wall, collections.Counter()
            for node in request.profiling_info:
                per_kernel[(node.node_type, node.exec_type)] += node.real_time.total_seconds()
    return best, per_kernel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from cross_encoder_throughput import benchmark_model  # the same model as the throughput benchmark

    from rerank_lab.rerankers.cross_encoder import CrossEncoder, _openvino_request

    print(f"cpu bf16 instruction sets: {bf16_instruction_sets()}")
    with tempfile.TemporaryDirectory() as tmp:
        ce = CrossEncoder(benchmark_model(tmp), max_length=args.length, backend="torch", cache=False)
        model, tokenizer = ce._load()
        enc = tokenizer(["does vitamin d reduce the risk of fractures"] * args.batch,
                        ["calcium intake and bone density in older adults " * 60] * args.batch,
                        truncation="longest_first", max_length=args.length, padding="max_length", return_tensors="np")
        flops = linear_flops(model.config, args.batch * args.length)
        results = {}
        for precision, mode in (("f32", "exact"), ("bf16", "fast")):
            request = _openvino_request(model, tokenizer, ce.identity, mode, profile=True)
            wall, per_kernel = profile(request, {n: enc[n] for n in tokenizer.model_input_names}, args.repeats)
            fc = sum(seconds for (kind, _), seconds in per_kernel.items() if kind == "FullyConnected")
            total = sum(per_kernel.values())
            results[precision] = (wall, fc)
            print(f"{precision}: {args.batch / wall:.1f} pairs/s, {wall * 1000:.0f} ms per batch of "
                  f"{args.batch} x {args.length} tokens")
            for (kind, kernel), seconds in per_kernel.most_common(6):
                print(f"    {kind:16s} {kernel:24s} {seconds * 1000:7.1f} ms  {100 * seconds / total:4.0f}%")
            print(f"    FullyConnected: {flops / fc / 1e9:.0f} GFLOP/s")
    (w32, fc32), (w16, fc16) = results["f32"], results["bf16"]
    print(f"model={ce.model_name}")
    print(f"fc_bf16_over_f32={fc32 / fc16:.2f} fc_gflops_f32={flops / fc32 / 1e9:.0f} "
          f"fc_gflops_bf16={flops / fc16 / 1e9:.0f} bf16_over_f32={w32 / w16:.2f}")


if __name__ == "__main__":
    main()
