"""One SAE training step (forward, loss, backward, Adam, decoder upkeep) at d = 512,
8192 latents, k = 32, batch 4096: mint (bench_dictionary) against the same step written
plainly in PyTorch, same thread count, same run. Both start from the same weights and
data (written here as .npy, read by the mint binary through MINT_SAE_BENCH_DIR); the
first step's loss must agree to 1e-4 (relative: float32 sums in different orders).
Recipes: ReLU with the L1 weighted by decoder norms and a free decoder (Anthropic,
April 2024); TopK and JumpReLU with unit-norm decoder rows and the decoder gradient
projected off each row; JumpReLU's threshold through the rectangle-kernel
straight-through estimator (bandwidth 0.05, L0 coefficient 1e-3), as SAELens writes it.
The *_sparse rows start with every b_enc at -2.42, which leaves about 64 latents active
per row (the L0 of a trained SAE), where mint's ReLU and JumpReLU steps go sparse.
Also prints the TopK step against the encoder product alone, and that product against
an sgemm of the same size. Run: scripts/bench peers sae_torch"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

D_IN, D_SAE, K, BATCH = 512, 8192, 32, 4096
L1, L0, BANDWIDTH, THRESHOLD, LR = 5.0, 1e-3, 0.05, 0.05, 1e-4
SPARSE_BIAS = -2.42  # b_enc of the *_sparse rows: about 64 of 8192 latents active, a trained SAE's L0


def mint_results(binary, folder):
    env = dict(os.environ, MINT_SAE_BENCH_DIR=folder)
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true",
                          "--benchmark_filter=sae_step/(relu|topk|jumprelu)|encoder_product|sgemm_peak"],
                         check=True, capture_output=True, text=True, env=env).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].split("/min_time")[0]
            result[name] = (b["real_time"] * 1e-3, b.get("loss"))
    return result


def torch_steps(torch, x, w_enc, w_dec):
    """The three steps in plain PyTorch, each a function returning the loss before its update."""

    def params(threshold=False, bias=0.0):
        p = {"W_enc": torch.tensor(w_enc, requires_grad=True), "b_enc": torch.full((D_SAE,), bias, requires_grad=True),
             "W_dec": torch.tensor(w_dec, requires_grad=True), "b_dec": torch.zeros(D_IN, requires_grad=True)}
        if threshold:
            p["threshold"] = torch.full((D_SAE,), THRESHOLD, requires_grad=True)
        return p

    def rectangle(u):
        return ((u > -0.5) & (u < 0.5)).to(u.dtype)

    class JumpReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, pre, threshold):
            ctx.save_for_backward(pre, threshold)
            return pre * (pre > threshold)

        @staticmethod
        def backward(ctx, grad):
            pre, threshold = ctx.saved_tensors
            return ((pre > threshold) * grad,
                    (-(threshold / BANDWIDTH) * rectangle((pre - threshold) / BANDWIDTH) * grad).sum(0))

    class Step(torch.autograd.Function):
        @staticmethod
        def forward(ctx, pre, threshold):
            ctx.save_for_backward(pre, threshold)
            return (pre > threshold).to(pre.dtype)

        @staticmethod
        def backward(ctx, grad):
            pre, threshold = ctx.saved_tensors
            return torch.zeros_like(pre), (-(1.0 / BANDWIDTH) * rectangle((pre - threshold) / BANDWIDTH) * grad).sum(0)

    xt = torch.tensor(x)

    def make(name):
        arch, sparse = name.split("_")[0], name.endswith("_sparse")
        p = params(arch == "jumprelu", SPARSE_BIAS if sparse else 0.0)
        opt = torch.optim.Adam(p.values(), lr=LR)
        unit_norm = arch != "relu"

        def step():
            opt.zero_grad(set_to_none=True)
            pre = (xt - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
            if arch == "relu":
                z = torch.relu(pre)
                penalty = L1 * (z * p["W_dec"].norm(dim=1)).sum(-1).mean()
            elif arch == "topk":
                values, indices = pre.topk(K, dim=-1)
                z = torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))
                penalty = 0.0
            else:
                z = JumpReLU.apply(pre, p["threshold"])
                penalty = L0 * Step.apply(pre, p["threshold"]).sum(-1).mean()
            x_hat = z @ p["W_dec"] + p["b_dec"]
            loss = (x_hat - xt).pow(2).sum(-1).mean() + penalty
            loss.backward()
            if unit_norm:
                w, g = p["W_dec"].data, p["W_dec"].grad
                g -= (g * w).sum(1, keepdim=True) * w
            opt.step()
            if unit_norm:
                with torch.no_grad():
                    p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True)
                    if arch == "jumprelu":
                        p["threshold"].clamp_(min=0)
            return float(loss)

        return step

    return {name: make(name) for name in ("relu", "relu_sparse", "topk", "jumprelu", "jumprelu_sparse")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    args = parser.parse_args()
    threads = common.thread_count()
    print(common.setup_peers(threads))
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, D_IN), dtype=np.float32)
    w_dec = rng.standard_normal((D_SAE, D_IN), dtype=np.float32)
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    w_enc = np.ascontiguousarray(w_dec.T)
    folder = tempfile.mkdtemp(prefix="mint-sae-peers-")
    try:
        for name, a in {"x": x, "W_enc": w_enc, "W_dec": w_dec, "b_enc": np.zeros(D_SAE, np.float32),
                        "b_dec": np.zeros(D_IN, np.float32)}.items():
            np.save(os.path.join(folder, name + ".npy"), a)
        mint = mint_results(os.path.join(args.build, "benchmarks", "bench_dictionary"), folder)
    finally:
        shutil.rmtree(folder)

    steps = torch_steps(torch, x, w_enc, w_dec)
    rows = []
    for arch, step in steps.items():
        mint_seconds, mint_loss = mint[f"sae_step/{arch}"]
        torch_loss = step()  # the first step, from the shared start
        if abs(torch_loss - mint_loss) > 1e-4 * abs(torch_loss):
            sys.exit(f"sae_torch: {arch}: first-step loss {mint_loss} in mint, {torch_loss} in PyTorch")
        torch_seconds = common.best_seconds(step, repeat=3, min_seconds=0.1)
        rows.append([arch, f"{mint_seconds * 1e3:.0f} ms", f"{torch_seconds * 1e3:.0f} ms",
                     common.speedup(torch_seconds, mint_seconds)])
    print(f"\nSAE training step, d {D_IN}, {D_SAE} latents, k {K}, batch {BATCH}, {threads} threads "
          f"(first-step losses agree to 1e-4)")
    print(f"{'arch':<17}{'mint':>10}{'PyTorch':>10}{'speedup':>10}")
    for r in rows:
        print(f"{r[0]:<17}{r[1]:>10}{r[2]:>10}{r[3]:>10}")
    product, peak = mint["encoder_product"][0], mint["sgemm_peak"][0]
    flops = 2.0 * BATCH * D_IN * D_SAE
    print(f"\nTopK step / encoder product alone: {mint['sae_step/topk'][0] / product:.2f} (goal <= 2.5)")
    print(f"encoder product {flops / product / 1e9:.0f} GFLOP/s, sgemm of the same size {flops / peak / 1e9:.0f} GFLOP/s: "
          f"{100 * peak / product:.0f}% of peak (goal >= 70%)")


if __name__ == "__main__":
    main()
