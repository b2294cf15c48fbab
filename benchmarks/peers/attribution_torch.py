"""Integrated gradients at the token embeddings of the tour's toy transformer (examples/tour.cpp:
vocab 16, 24 positions, d_model 64, 2 attention-only layers of 4 heads of 16, pre-LN): mint against
the same attribution written plainly in PyTorch, same thread count, same run, repetitions
interleaved. The model is mint's (mint::toy::save writes it, with TransformerLens names, through
the attribution_mint driver, which also times mint's side on request); PyTorch reads the
safetensors file and runs the same forward (embeddings + positional embeddings, pre-LN attention
with 1/sqrt(d_head) scaling and a causal mask, exact-erf GELU MLP when there is one, final
LayerNorm, unembedding with bias). IG as Captum runs it by default: Gauss-Legendre with 50 points
on [0, 1] (numpy's leggauss mapped), zero baseline, every step a copy of the batch as rows, one
backward for activation gradients only, plus the metric at the input and at the baseline for the
completeness delta. Metric: mean over rows of logit[correct] - logit[wrong] at the last position.
The attributions must agree within 1e-4 of the largest |value| and the deltas within 1e-4 before
any time is printed. PyTorch runs mint's thread count in its OpenMP pool with its BLAS on the
calling thread (one pool, as mint; see main). Also times mint's attribution patching over every
site against mint's bare forward of the same batch (forward-equivalents).
Run: scripts/bench peers attribution_torch (or benchmarks/peers/run attribution_torch --build BUILD)."""

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

# name: (vocab, context, d_model, layers, heads, d_head, d_mlp)
MODELS = {
    "tour": (16, 24, 64, 2, 4, 16, 0),
    "tour+mlp": (64, 32, 64, 2, 4, 16, 256),
}
STEPS = 50


def read_safetensors(path):
    """{name: float32 array} and the metadata of a safetensors file (F32 tensors only, as mint::toy::save writes)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            sys.exit(f"attribution_torch: {name} is {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(blob, dtype="<f4", count=(end - begin) // 4, offset=base + begin).reshape(t["shape"])
    return tensors, metadata


class TorchModel:
    """mint::toy::transformer's forward in plain PyTorch, from its safetensors file."""

    def __init__(self, torch, path):
        self.torch = torch
        weights, metadata = read_safetensors(path)
        c = json.loads(metadata["mint.toy.config"])
        if c["kv_heads"] not in (0, c["heads"]) or c["split_qkv_input"] or not c["layer_norm"] or c["activation"] != "gelu":
            sys.exit(f"attribution_torch: config {c} is not the one this script mirrors")
        self.c = c
        w = {k: torch.tensor(np.array(v)) for k, v in weights.items()}  # plain tensors: no parameter gradients
        self.W_E, self.W_pos, self.W_U, self.b_U = w["embed.W_E"], w["pos_embed.W_pos"], w["unembed.W_U"], w["unembed.b_U"]
        self.ln_final = (w["ln_final.w"], w["ln_final.b"])
        H, d, dh = c["heads"], c["d_model"], c["d_head"]
        self.blocks = []
        for l in range(c["layers"]):
            b = f"blocks.{l}."
            # Q, K and V of every head in one product: [d, 3 H dh], columns (q|k|v, head, d_head).
            W_qkv = torch.cat([w[b + f"attn.W_{x}"].permute(1, 0, 2).reshape(d, H * dh) for x in "QKV"], dim=1).contiguous()
            b_qkv = torch.cat([w[b + f"attn.b_{x}"].reshape(H * dh) for x in "QKV"])
            block = {"ln1": (w[b + "ln1.w"], w[b + "ln1.b"]), "W_qkv": W_qkv, "b_qkv": b_qkv,
                     "W_O": w[b + "attn.W_O"].reshape(H * dh, d).contiguous(), "b_O": w[b + "attn.b_O"]}
            if c["d_mlp"] > 0:
                block.update({"ln2": (w[b + "ln2.w"], w[b + "ln2.b"]), "W_in": w[b + "mlp.W_in"], "b_in": w[b + "mlp.b_in"],
                              "W_out": w[b + "mlp.W_out"], "b_out": w[b + "mlp.b_out"]})
            self.blocks.append(block)
        P = c["context"]
        self.future = torch.triu(torch.ones(P, P, dtype=torch.bool), diagonal=1)

    def forward(self, embed):
        """Logits [N, P, vocab] from the hook_embed activation [N, P, d] (W_E[tokens], positions not yet added)."""
        torch, F, c = self.torch, self.torch.nn.functional, self.c
        N, P, d = embed.shape
        H, dh, eps = c["heads"], c["d_head"], c["layer_norm_eps"]
        x = embed + self.W_pos[:P]
        mask = self.future[:P, :P]
        for blk in self.blocks:
            h = F.layer_norm(x, (d,), *blk["ln1"], eps)
            q, k, v = (h @ blk["W_qkv"] + blk["b_qkv"]).split(H * dh, dim=-1)
            q, k, v = (t.reshape(N, P, H, dh).transpose(1, 2) for t in (q, k, v))
            scores = (q @ k.transpose(-1, -2)) * (1.0 / dh ** 0.5)
            pattern = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
            z = (pattern @ v).transpose(1, 2).reshape(N, P, H * dh)
            x = x + (z @ blk["W_O"] + blk["b_O"])
            if "W_in" in blk:
                h = F.layer_norm(x, (d,), *blk["ln2"], eps)
                x = x + (F.gelu(h @ blk["W_in"] + blk["b_in"]) @ blk["W_out"] + blk["b_out"])
        return F.layer_norm(x, (d,), *self.ln_final, eps) @ self.W_U + self.b_U


def torch_ig(torch, model, tokens, correct, wrong, steps):
    """Returns ig(): integrated gradients at the embeddings -> (attributions [B, P, d], delta, value, baseline value)."""
    points, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor(0.5 * (points + 1.0), dtype=torch.float32).view(steps, 1, 1, 1)
    step_weights = torch.tensor(0.5 * weights, dtype=torch.float32).view(steps, 1)
    B, P = tokens.shape

    def logit_difference(logits):  # [n B, P, V] -> per row at the last position
        last = logits[:, -1, :]
        n_rows = torch.arange(last.shape[0])
        return last[n_rows, correct.repeat(last.shape[0] // B)] - last[n_rows, wrong.repeat(last.shape[0] // B)]

    def ig():
        x = model.W_E[tokens]  # hook_embed
        baseline = torch.zeros_like(x)
        with torch.no_grad():
            value = logit_difference(model.forward(x)).mean()
            baseline_value = logit_difference(model.forward(baseline)).mean()
        path = (baseline + alphas * (x - baseline)).reshape(steps * B, P, -1).requires_grad_()
        per_row = logit_difference(model.forward(path)).view(steps, B)
        (grad,) = torch.autograd.grad((per_row * step_weights).sum() / B, path)
        attributions = (x - baseline) * grad.view(steps, B, P, -1).sum(0)
        delta = attributions.double().sum() - (value.double() - baseline_value.double())
        return attributions, float(delta), float(value), float(baseline_value)

    return ig


class MintDriver:
    """The attribution_mint process: saves the model and inputs, then times mint's calls on request."""

    def __init__(self, binary, folder, shape, batch, steps):
        if not os.path.exists(binary):
            sys.exit(f"{binary} not found: build the benchmarks first (meson compile -C BUILD)")
        self.p = subprocess.Popen([binary, folder, *map(str, shape), str(batch), str(steps)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"attribution_torch: {binary} failed")
        self.info = json.loads(line)

    def seconds(self, command, n):
        self.p.stdin.write(f"{command} {n}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"attribution_torch: the mint driver stopped during '{command} {n}'")
        return float(line)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait()


def torch_seconds(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def interleaved(mint_call, torch_call, repeat, min_seconds):
    """Medians of `repeat` samples of each, alternating mint and PyTorch, each sample >= min_seconds."""
    mint_call(1), torch_call(1)  # warm up
    n_mint = max(1, int(min_seconds / max(mint_call(1), 1e-9)))
    n_torch = max(1, int(min_seconds / max(torch_call(1), 1e-9)))
    m, t = [], []
    for _ in range(repeat):
        m.append(mint_call(n_mint))
        t.append(torch_call(n_torch))
    return statistics.median(m), statistics.median(t)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="prompts per IG call")
    parser.add_argument("--models", nargs="+", default=["tour"], choices=sorted(MODELS))
    parser.add_argument("--patch-batch", type=int, nargs="+", default=[8, 64], help="prompts per attribution patching call")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.3)
    args = parser.parse_args()
    threads = common.thread_count()
    print(common.setup_peers(threads))
    import threadpoolctl
    import torch

    # PyTorch's threads are its OpenMP pool (torch.set_num_threads, done above); Debian's torch
    # calls OpenBLAS (the pthread build) for its products, whose own pool would fight the OpenMP
    # pool for the cores and spin on them after each product (PyTorch's IG ran about 1.7x slower
    # here with both at 2 threads, and mint's next sample slower too). One pool, as mint has:
    # OpenBLAS on the calling thread.
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")
    print(f"PyTorch: {torch.get_num_threads()} OpenMP threads, its BLAS on 1 thread "
          f"({', '.join(p['internal_api'] + ' ' + str(p['num_threads']) for p in threadpoolctl.threadpool_info())})")

    binary = os.path.join(args.build, "benchmarks", "attribution_mint")
    ig_rows, patch_rows = [], []
    folder = tempfile.mkdtemp(prefix="mint-attribution-peers-")
    try:
        for name in args.models:
            shape = MODELS[name]
            for batch in sorted(set(args.batch) | set(args.patch_batch)):
                sub = os.path.join(folder, f"{name}-{batch}")
                mint = MintDriver(binary, sub, shape, batch, STEPS)
                try:
                    if mint.info["threads"] != threads:
                        sys.exit(f"attribution_torch: mint runs {mint.info['threads']} threads, PyTorch {threads}")
                    if batch in args.batch:
                        model = TorchModel(torch, os.path.join(sub, "model.safetensors"))
                        load = lambda f: torch.tensor(np.load(os.path.join(sub, f)).astype(np.int64))  # noqa: E731
                        ig = torch_ig(torch, model, load("tokens.npy"), load("correct.npy"), load("wrong.npy"), STEPS)
                        values, delta, value, baseline_value = ig()
                        mint_values = np.load(os.path.join(sub, "ig.npy"))
                        scale = float(np.abs(mint_values).max())
                        error = float(np.abs(values.numpy() - mint_values).max()) / scale
                        for what, a, b in (("metric at the input", value, mint.info["value"]),
                                           ("metric at the baseline", baseline_value, mint.info["baseline_value"])):
                            if abs(a - b) > 1e-4 * max(1.0, abs(b)):
                                sys.exit(f"attribution_torch: {name} batch {batch}: {what} {b} in mint, {a} in PyTorch")
                        if not error <= 1e-4 or not abs(delta - mint.info["delta"]) <= 1e-4:
                            sys.exit(f"attribution_torch: {name} batch {batch}: attributions differ by {error:.2e} of the "
                                     f"largest |value| (<= 1e-4 needed), deltas {mint.info['delta']:.3e} in mint and "
                                     f"{delta:.3e} in PyTorch (within 1e-4 needed)")
                        m, t = interleaved(lambda n: mint.seconds("ig", n), lambda n: torch_seconds(ig, n),
                                           args.repeat, args.min_seconds)
                        ig_rows.append([name, str(batch), f"{m * 1e3:.2f} ms", f"{t * 1e3:.2f} ms", f"{m / t:.2f}",
                                        common.speedup(t, m), f"{error:.1e}", f"{mint.info['delta']:+.1e} / {delta:+.1e}"])
                    if batch in args.patch_batch:
                        p, f = interleaved(lambda n: mint.seconds("patch", n), lambda n: mint.seconds("forward", n),
                                           args.repeat, args.min_seconds)
                        patch_rows.append([name, str(batch), str(mint.info["patched_sites"]), f"{p * 1e3:.3f} ms",
                                           f"{f * 1e3:.3f} ms", f"{p / f:.2f}"])
                finally:
                    mint.close()
    finally:
        shutil.rmtree(folder)

    print(f"\nIntegrated gradients at hook_embed, Gauss-Legendre n = {STEPS}, zero baseline, logit difference, "
          f"{threads} threads; medians of {args.repeat} interleaved samples (attributions agree within 1e-4 of the "
          f"largest |value|, deltas within 1e-4)")
    common.print_table(["model", "batch", "mint", "PyTorch", "mint/torch", "speedup", "max err", "delta mint / torch"],
                       ig_rows)
    print("\nAttribution patching over every site against mint's bare forward of the same batch (goal <= 3.5)")
    common.print_table(["model", "batch", "sites", "patching", "forward", "forward-equivalents"], patch_rows)


if __name__ == "__main__":
    main()
