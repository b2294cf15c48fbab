"""Shared by the peer benchmarks (benchmarks/peers/*.py): the Python side gets
the same thread count as mint and a real BLAS, says which it got, and is timed
the way Google Benchmark times mint, in the same run. Run through
benchmarks/peers/run, which installs the peers and frees NumPy's OpenBLAS from
the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides of this environment."""

import json
import os
import statistics
import struct
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
    # benchmarks/peers/run names the core type itself where OpenBLAS cannot detect the processor.
    chosen = os.environ.get("MINT_PEER_CORETYPE")
    overrides = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                 if k in os.environ and not (k == "OPENBLAS_CORETYPE" and os.environ[k] == chosen)]
    if overrides:
        parts.append("WARNING: " + ", ".join(overrides) + " set; NumPy runs older kernels")
    return "; ".join(parts)


# Where PyTorch's threads go. Debian's torch calls OpenBLAS (the pthread build) for its products;
# its OpenMP pool runs the elementwise work. Two pools at `threads` each fight for the cores, so
# one of them gets them all. Which is faster depends on the work: a peer offers both.
TORCH_LAYOUTS = {
    "blas": "its BLAS (OpenBLAS) on {t} threads, its OpenMP pool on 1",
    "openmp": "its OpenMP pool on {t} threads, its BLAS on the calling thread",
}


def set_torch_threads(layout, threads):
    """Puts PyTorch's threads where `layout` (a TORCH_LAYOUTS key) says; returns a line saying so."""
    import threadpoolctl
    import torch

    blas, pool = (threads, 1) if layout == "blas" else (1, threads)
    threadpoolctl.threadpool_limits(limits=blas, user_api="blas")
    torch.set_num_threads(pool)
    return (f"PyTorch: {TORCH_LAYOUTS[layout].format(t=threads)} (torch threads {torch.get_num_threads()}; "
            f"{', '.join(p['internal_api'] + ' ' + str(p['num_threads']) for p in threadpoolctl.threadpool_info())})")


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


# mint's toy transformer in PyTorch, and the driver processes that serve mint's timings
# (benchmarks/peers/attribution_torch.py, patching_torch.py).


def read_safetensors(path):
    """{name: float32 array} and the metadata of a safetensors file (F32 tensors only, as mint::toy::save writes)."""
    import numpy as np

    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            sys.exit(f"read_safetensors: {path}: {name} is {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(blob, dtype="<f4", count=(end - begin) // 4, offset=base + begin).reshape(t["shape"])
    return tensors, metadata


class TorchModel:
    """mint::toy::transformer's forward in plain PyTorch, from its safetensors file: embeddings +
    positional embeddings, pre-LN attention with 1/sqrt(d_head) scaling and a causal mask, an
    exact-erf GELU MLP when there is one, final LayerNorm, unembedding with bias. Hook points as
    TransformerLens has them, torch.nn.Identity modules to hang forward hooks on (a hook that
    returns a tensor replaces the activation): hooks["blocks.{l}.hook_resid_pre"] [N, P, d] and
    hooks["blocks.{l}.attn.hook_z"] [N, P, heads, d_head]."""

    def __init__(self, torch, path):
        import numpy as np

        self.torch = torch
        weights, metadata = read_safetensors(path)
        c = json.loads(metadata["mint.toy.config"])
        if c["kv_heads"] not in (0, c["heads"]) or c["split_qkv_input"] or not c["layer_norm"] or c["activation"] != "gelu":
            sys.exit(f"TorchModel: config {c} is not the one benchmarks/peers/common.py mirrors")
        self.c = c
        w = {k: torch.tensor(np.array(v)) for k, v in weights.items()}  # plain tensors: no parameter gradients
        self.W_E, self.W_pos, self.W_U, self.b_U = w["embed.W_E"], w["pos_embed.W_pos"], w["unembed.W_U"], w["unembed.b_U"]
        self.ln_final = (w["ln_final.w"], w["ln_final.b"])
        H, d, dh = c["heads"], c["d_model"], c["d_head"]
        self.blocks = []
        self.hooks = {}
        for l in range(c["layers"]):
            b = f"blocks.{l}."
            # Q, K and V of every head in one product: [d, 3 H dh], columns (q|k|v, head, d_head).
            W_qkv = torch.cat([w[b + f"attn.W_{x}"].permute(1, 0, 2).reshape(d, H * dh) for x in "QKV"], dim=1).contiguous()
            b_qkv = torch.cat([w[b + f"attn.b_{x}"].reshape(H * dh) for x in "QKV"])
            block = {"ln1": (w[b + "ln1.w"], w[b + "ln1.b"]), "W_qkv": W_qkv, "b_qkv": b_qkv,
                     "W_O": w[b + "attn.W_O"].reshape(H * dh, d).contiguous(), "b_O": w[b + "attn.b_O"],
                     "hook_resid_pre": torch.nn.Identity(), "hook_z": torch.nn.Identity()}
            self.hooks[b + "hook_resid_pre"], self.hooks[b + "attn.hook_z"] = block["hook_resid_pre"], block["hook_z"]
            if c["d_mlp"] > 0:
                block.update({"ln2": (w[b + "ln2.w"], w[b + "ln2.b"]), "W_in": w[b + "mlp.W_in"], "b_in": w[b + "mlp.b_in"],
                              "W_out": w[b + "mlp.W_out"], "b_out": w[b + "mlp.b_out"]})
            self.blocks.append(block)
        P = c["context"]
        self.future = torch.triu(torch.ones(P, P, dtype=torch.bool), diagonal=1)

    def forward(self, embed):
        """Logits [N, P, vocab] from the hook_embed activation [N, P, d] (W_E[tokens], positions not yet added)."""
        return self.forward_from(0, embed + self.W_pos[:embed.shape[1]])

    def forward_from(self, layer, resid):
        """Logits [N, P, vocab] from block `layer`'s hook_resid_pre activation [N, P, d] on."""
        torch, F, c = self.torch, self.torch.nn.functional, self.c
        N, P, d = resid.shape
        H, dh, eps = c["heads"], c["d_head"], c["layer_norm_eps"]
        x = resid
        mask = self.future[:P, :P]
        for blk in self.blocks[layer:]:
            x = blk["hook_resid_pre"](x)
            h = F.layer_norm(x, (d,), *blk["ln1"], eps)
            q, k, v = (h @ blk["W_qkv"] + blk["b_qkv"]).split(H * dh, dim=-1)
            q, k, v = (t.reshape(N, P, H, dh).transpose(1, 2) for t in (q, k, v))
            scores = (q @ k.transpose(-1, -2)) * (1.0 / dh ** 0.5)
            pattern = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
            z = blk["hook_z"]((pattern @ v).transpose(1, 2))  # [N, P, H, dh]
            x = x + (z.reshape(N, P, H * dh) @ blk["W_O"] + blk["b_O"])
            if "W_in" in blk:
                h = F.layer_norm(x, (d,), *blk["ln2"], eps)
                x = x + (F.gelu(h @ blk["W_in"] + blk["b_in"]) @ blk["W_out"] + blk["b_out"])
        return F.layer_norm(x, (d,), *self.ln_final, eps) @ self.W_U + self.b_U


class MintDriver:
    """A mint driver process (benchmarks/peers/*_mint.cpp): started with `args`, it saves the model
    and inputs, prints one JSON line (kept as .info), then times mint's calls on request: a line
    'COMMAND N' gets back the seconds per call over N calls."""

    def __init__(self, binary, args):
        if not os.path.exists(binary):
            sys.exit(f"{binary} not found: build the benchmarks first (meson compile -C BUILD)")
        self.name = os.path.basename(binary)
        self.p = subprocess.Popen([binary, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"{binary} failed")
        self.info = json.loads(line)

    def seconds(self, command, n):
        self.p.stdin.write(f"{command} {n}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"{self.name} stopped during '{command} {n}'")
        return float(line)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait()


def torch_seconds(fn, n):
    """Seconds per call of fn over n calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def interleaved(mint_call, torch_call, repeat, min_seconds):
    """Medians of `repeat` samples of each, alternating mint and PyTorch, each sample >= min_seconds;
    mint_call(n) and torch_call(n) return seconds per call over n calls."""
    mint_call(1), torch_call(1)  # warm up
    n_mint = max(1, int(min_seconds / max(mint_call(1), 1e-9)))
    n_torch = max(1, int(min_seconds / max(torch_call(1), 1e-9)))
    m, t = [], []
    for _ in range(repeat):
        m.append(mint_call(n_mint))
        t.append(torch_call(n_torch))
    return statistics.median(m), statistics.median(t)
