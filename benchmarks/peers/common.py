"""Shared by the peer benchmarks (benchmarks/peers/*.py): the Python side gets
the same thread count as mint and a real BLAS, says which it got, and is timed
the way Google Benchmark times mint, in the same run. Run through
benchmarks/peers/run, which installs the peers and frees NumPy's OpenBLAS from
the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides of this environment."""

import json
import os
import statistics
import subprocess
import sys
import time


def thread_count():
    """mint's thread count: OMP_NUM_THREADS when set, else every core (OpenMP's default)."""
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def setup_peers(threads):
    """Sets NumPy's BLAS and PyTorch to `threads`; returns a line saying what they run."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=threads)
    parts = []
    for pool in threadpoolctl.threadpool_info():
        parts.append(
            f"{pool.get('internal_api')} {pool.get('version')} kernel {pool.get('architecture', '?')} "
            f"threads {pool.get('num_threads')}"
        )
    try:
        import torch

        torch.set_num_threads(threads)
        parts.append(f"torch {torch.__version__} threads {torch.get_num_threads()}")
    except ImportError:
        pass
    overrides = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    if overrides:
        parts.append("WARNING: " + ", ".join(overrides) + " set; NumPy runs older kernels")
    return "; ".join(parts)


def best_seconds(fn, repeat=5, min_seconds=0.2):
    """Median over `repeat` samples of fn's time, each sample long enough to time (like Google Benchmark)."""
    fn()  # warm up
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    inner = max(1, int(min_seconds / max(once, 1e-9)))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def run_mint(binary, benchmark_filter, repetitions=3, counters=False):
    """Runs a Google Benchmark binary; returns {name: seconds per iteration} (median of repetitions),
    and with counters=True also {name: {counter: value}} (the median run's user counters)."""
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: build the benchmarks first (meson compile -C build)")
    out = subprocess.run(
        [binary, f"--benchmark_filter={benchmark_filter}", "--benchmark_format=json",
         f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"],
        check=True, capture_output=True, text=True).stdout
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    times, values = {}, {}
    skip = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
            "threads", "aggregate_name", "aggregate_unit", "iterations", "real_time", "cpu_time", "time_unit"}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            times[b["run_name"]] = b["real_time"] * scale[b["time_unit"]]
            values[b["run_name"]] = {k: v for k, v in b.items() if k not in skip}
    return (times, values) if counters else times


def speedup(peer_seconds, mint_seconds):
    """The figure we report: how many times faster mint is, written like 4.2x."""
    return f"{peer_seconds / mint_seconds:.1f}x"


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
